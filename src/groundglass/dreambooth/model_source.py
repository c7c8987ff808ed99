"""Open a model for sampling, prior generation or export, loading weights only from safe formats.

A model is named by a diffusers folder (a base model or an export), a Hugging Face model id, or one of
our own training checkpoints (``.ckpt``, read by ``groundglass.dreambooth.trained.load_trained`` with
``torch.load(weights_only=True)``). Pickle files from elsewhere (``.bin``, ``.pt``, ``.pth``, foreign
``.ckpt``) can run arbitrary code when unpickled, so they are refused with a message saying how to
convert them; diffusers folders must hold their weights as ``.safetensors``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError, NotFoundError

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
WEIGHT_FOLDERS = ("unet", "vae", "text_encoder")
_CONVERT_HINT = (
    "convert it with a tool you trust, e.g. load it once in Python and call "
    "save_pretrained(folder, safe_serialization=True)"
)


@dataclass
class OpenedModel:
    components: Any
    kind: str  # "folder", "hub" or "checkpoint"
    hparams: dict[str, Any] = field(default_factory=dict)


def refuse_pickle_weights(folder: Path) -> None:
    """Raise a clear error when a diffusers folder holds some component's weights only as pickle."""
    for name in WEIGHT_FOLDERS:
        sub = folder / name
        if not sub.is_dir():
            continue
        files = [p for p in sub.iterdir() if p.is_file()]
        if any(p.name.endswith((".safetensors", ".safetensors.index.json")) for p in files):
            continue
        pickles = sorted(p.name for p in files if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise GroundglassError(
                f"{sub} holds its weights only as pickle ({', '.join(pickles)}), which can run code "
                "when loaded; groundglass loads safetensors only",
                _CONVERT_HINT,
            )


def refuse_pickle(path: Path) -> None:
    raise GroundglassError(
        f"{path} is a pickle file ({path.suffix}); loading pickles from outside can run arbitrary code, so "
        "groundglass loads only safetensors and its own training checkpoints",
        _CONVERT_HINT,
    )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not name.startswith((".", "~"))
        and not any(p.endswith(tuple(PICKLE_SUFFIXES | {".safetensors"})) for p in parts)
    )


def open_base_model(pretrained: str, *, local_files_only: bool = False, vae: str | None = None) -> Any:
    """Components of a base model: a local diffusers folder (checked first) or a Hugging Face model id;
    ``vae`` replaces its VAE (see :func:`~groundglass.dreambooth.model.load_components`)."""
    from groundglass.dreambooth.model import check_folder, load_components

    path = Path(pretrained).expanduser()
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            refuse_pickle(path)
        raise GroundglassError(
            f"{path} is a file; a model is a diffusers folder or a Hugging Face model id",
            "pass the folder that holds model_index.json, unet/, vae/ ...",
        )
    if path.is_dir():
        check_folder(path)
        refuse_pickle_weights(path)
    return load_components(pretrained, local_files_only=local_files_only, vae=vae)


def open_checkpoint(path: Path, *, use_ema: bool = True) -> OpenedModel:
    """A groundglass training checkpoint: base components with the trained weights applied."""
    from groundglass.dreambooth.trained import load_trained

    try:
        components, hparams = load_trained(path, use_ema=use_ema)
    except GroundglassError as exc:
        if isinstance(exc.__cause__, pickle.UnpicklingError):
            raise GroundglassError(
                f"refusing to load {path}: it holds Python objects that would run code when unpickled, so it "
                "is not a groundglass training checkpoint (those load with torch.load(weights_only=True))",
                "pass a .ckpt written by `groundglass dreambooth fit`, or a diffusers folder in safetensors",
            ) from exc
        raise
    return OpenedModel(components=components, kind="checkpoint", hparams=dict(hparams or {}))


def open_model(model: str, *, use_ema: bool = True, local_files_only: bool = False) -> OpenedModel:
    """Open ``model`` (diffusers folder, model id, or training ``.ckpt``) for sampling or export."""
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix == ".ckpt":
            return open_checkpoint(path, use_ema=use_ema)
        if path.suffix == ".safetensors":
            raise GroundglassError(
                f"{path} is a single-file checkpoint; groundglass reads models as diffusers folders",
                "use the diffusers folder written with it (`dreambooth export --format diffusers`)",
            )
        if path.suffix in PICKLE_SUFFIXES:
            refuse_pickle(path)
        raise GroundglassError(
            f"{path} is not a model", "pass a diffusers folder or a groundglass .ckpt checkpoint"
        )
    if not path.exists() and not _looks_like_hub_id(model):
        raise NotFoundError(
            f"model {model} not found (no such folder or file)",
            "pass a diffusers folder, a model id like org/name, or a .ckpt from `dreambooth fit`",
        )
    components = open_base_model(model, local_files_only=local_files_only)
    return OpenedModel(components=components, kind="folder" if path.exists() else "hub")
