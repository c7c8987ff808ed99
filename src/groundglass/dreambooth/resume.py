"""What a DreamBooth checkpoint holds beside the trained weights, and the checks that it fits the run.

A checkpoint keeps only the trainable weights; the frozen ones come from the base model. Beside
Lightning's own entries it carries a ``groundglass`` record: a format number, the run's fields (base
model, what trains, seed, data fingerprint), the trainable keys, the EMA state and the RNG states of
torch, Python and NumPy (CUDA too where initialised), so that a resumed run continues the same
random streams. Loading refuses a checkpoint of another format, of another run, or whose trained
weights are not exactly what this config trains.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from groundglass.dreambooth.hparams import to_plain
from groundglass.dreambooth.trained import check_same_run
from groundglass.errors import GroundglassError

CHECKPOINT_FORMAT = 1


def rng_state() -> dict[str, Any]:
    """The RNG states of torch, Python and NumPy (and CUDA where initialised), as a checkpoint holds them."""
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def slim_checkpoint(
    checkpoint: dict[str, Any], *, trainable_keys: list[str], run: dict[str, Any], ema: dict[str, Any] | None
) -> None:
    """Keep only the trained weights of ``checkpoint``, make its hyperparameters plain data, and add the
    ``groundglass`` record (in place, as Lightning's ``on_save_checkpoint`` expects)."""
    keep = set(trainable_keys)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if key in checkpoint:
            checkpoint[key] = to_plain(dict(checkpoint[key]))
    checkpoint["groundglass"] = {
        "format": CHECKPOINT_FORMAT,
        "run": run,
        "trainable_keys": trainable_keys,
        "ema": ema,
        "rng": rng_state(),
    }


def check_checkpoint(
    checkpoint: dict[str, Any], *, run: dict[str, Any], trainable_keys: list[str]
) -> dict[str, Any]:
    """The ``groundglass`` record of a checkpoint this run can resume from; a GroundglassError naming the
    mismatch otherwise."""
    meta = checkpoint.get("groundglass")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise GroundglassError(
            "the checkpoint is not a groundglass DreamBooth checkpoint (or from a newer version)",
            "resume from a last.ckpt written by `groundglass dreambooth fit`",
        )
    check_same_run(meta["run"], run)
    expected, found = set(trainable_keys), set(checkpoint.get("state_dict", {}))
    if expected != found:
        raise GroundglassError(
            f"the checkpoint's trained weights do not match this config ({len(found & expected)} of "
            f"{len(expected)} trainable tensors found, {len(found - expected)} unexpected)",
            "resume with the config the checkpoint was trained with (what trains, LoRA settings)",
        )
    return meta
