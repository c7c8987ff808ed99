"""The DreamBooth paper's fidelity metrics with real models: CLIP-I, CLIP-T and DINO.

With e(x) the L2-normalised embedding of x and cos(a, b) = e(a) . e(b):

- **CLIP-I** (subject fidelity): the mean of cos(g, s) over every pair of a generated image g and an
  instance image s, with CLIP's image embedding (the projected pooled output of the vision tower).
- **CLIP-T** (prompt fidelity): the mean of cos(g, p) over the generated images, with CLIP's image
  embedding of g and CLIP's text embedding of the prompt p it was drawn from. The identifier is taken
  out of the prompt first ("a photo of sks dog on the beach" -> "a photo of dog on the beach"): CLIP has
  never seen the rare token, and the paper's CLIP-T measures whether the *context* was followed.
- **DINO** (subject fidelity, the paper's preferred one): the mean of cos(g, s) over every (generated,
  instance) pair, with the CLS token of a self-supervised ViT's last layer (after its final layer
  norm). The paper uses DINO ViT-S/16 (``facebook/dino-vits16``); DINOv2 (``facebook/dinov2-small``)
  loads the same way.

The models are ordinary transformers checkpoints named by a Hugging Face model id or a local folder,
loaded with ``from_pretrained(..., use_safetensors=True)``: weights come from safetensors only, a
folder with only pickle weights (``pytorch_model.bin``) is refused. Images are prepared by the
checkpoint's own image processor in its PIL implementation (no torchvision). Every load problem
raises a :class:`~groundglass.errors.GroundglassError` that names the config option the model came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from groundglass.errors import GroundglassError, ModelError, NotFoundError

BATCH = 32
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")
_SAVE_HINT = (
    "point it at a folder written by save_pretrained(folder, safe_serialization=True), or at a "
    "Hugging Face model id (e.g. {example}) that is in the local Hugging Face cache when offline"
)


def check_source(source: str, option: str, example: str) -> None:
    """Fail early, naming ``option``, when ``source`` is neither a usable folder nor a model id."""
    hint = _SAVE_HINT.format(example=example)
    path = Path(source).expanduser()
    if path.is_file():
        raise GroundglassError(f"{option}: {source} is a file, not a model folder", f"set {option}: {hint}")
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if "config.json" not in names:
            raise ModelError(
                f"{option}: folder {source} holds no transformers model (no config.json)",
                f"set {option}: {hint}",
            )
        if not any(n.endswith(".safetensors") or n.endswith(".safetensors.index.json") for n in names):
            pickles = sorted(names & set(_PICKLE_WEIGHTS))
            what = (
                f"only pickle weights ({', '.join(pickles)}), which can run code when loaded"
                if pickles
                else "no weights"
            )
            raise ModelError(
                f"{option}: folder {source} has {what}; models load from safetensors only",
                f"re-save it with save_pretrained(folder, safe_serialization=True), then set {option} to it",
            )
        return
    parts = source.split("/")
    if source.startswith((".", "/", "~")) or len(parts) != 2 or not all(parts):
        raise NotFoundError(
            f"{option}: {source!r} is neither an existing folder nor a Hugging Face model id",
            f"fix {option}: {hint}",
        )


def _load(kind: str, source: str, option: str, example: str, *, local_files_only: bool) -> tuple[Any, ...]:
    """The model, image processor and (CLIP only) tokenizer of ``source``, or a clear error."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer, CLIPModel

    check_source(source, option, example)
    kwargs: dict[str, Any] = {"local_files_only": local_files_only}
    try:
        if kind == "clip":
            model = CLIPModel.from_pretrained(source, dtype=torch.float32, use_safetensors=True, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        else:
            config = AutoConfig.from_pretrained(source, **kwargs)
            # DINO's checkpoints have no pooler, and its CLS token is read before any pooler anyway
            extra = {"add_pooling_layer": False} if config.model_type == "vit" else {}
            model = AutoModel.from_pretrained(
                source, config=config, dtype=torch.float32, use_safetensors=True, **extra, **kwargs
            )
            tokenizer = None
        processor = AutoImageProcessor.from_pretrained(source, backend="pil", **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{option}: cannot load {source!r} ({first})",
            f"fix {option}: {_SAVE_HINT.format(example=example)}",
        ) from exc
    return model, processor, tokenizer


def _pixels(processor: Any, images: Sequence[Any]) -> torch.Tensor:
    from PIL import Image

    rgb = [
        im.convert("RGB") if isinstance(im, Image.Image) else Image.fromarray(im).convert("RGB")
        for im in images
    ]
    return torch.as_tensor(processor(images=rgb, return_tensors="pt")["pixel_values"], dtype=torch.float32)


def _pooled(output: Any) -> torch.Tensor:
    """CLIP's projected features (transformers 5 returns a model output, older versions a tensor)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@dataclass
class ClipJudge:
    """A CLIP model with its image processor and tokenizer; embeddings are L2-normalised."""

    model: Any
    processor: Any
    tokenizer: Any

    @classmethod
    def load(
        cls,
        source: str,
        *,
        option: str = "clip_model",
        local_files_only: bool = False,
        device: torch.device | str = "cpu",
    ) -> ClipJudge:
        model, processor, tokenizer = _load(
            "clip", source, option, "openai/clip-vit-base-patch32", local_files_only=local_files_only
        )
        return cls(model.eval().requires_grad_(False).to(device), processor, tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def image_embeddings(self, images: Sequence[Any]) -> torch.Tensor:
        out = [
            _pooled(
                self.model.get_image_features(
                    pixel_values=_pixels(self.processor, images[i : i + BATCH]).to(self.device)
                )
            )
            for i in range(0, len(images), BATCH)
        ]
        return torch.nn.functional.normalize(torch.cat(out).float(), dim=1).cpu()

    @torch.inference_mode()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        limit = int(self.model.config.text_config.max_position_embeddings)
        out = []
        for i in range(0, len(texts), BATCH):
            tokens = self.tokenizer(
                list(texts[i : i + BATCH]),
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            ).to(self.device)
            out.append(
                _pooled(
                    self.model.get_text_features(
                        input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                    )
                )
            )
        return torch.nn.functional.normalize(torch.cat(out).float(), dim=1).cpu()


@dataclass
class DinoJudge:
    """A self-supervised ViT (DINO, DINOv2) with its image processor; the embedding is the last CLS token."""

    model: Any
    processor: Any

    @classmethod
    def load(
        cls,
        source: str,
        *,
        option: str = "dino_model",
        local_files_only: bool = False,
        device: torch.device | str = "cpu",
    ) -> DinoJudge:
        import inspect

        model, processor, _ = _load(
            "dino", source, option, "facebook/dino-vits16", local_files_only=local_files_only
        )
        inputs = inspect.signature(model.forward).parameters
        if "pixel_values" not in inputs or "input_ids" in inputs:  # e.g. a CLIP or text model
            raise ModelError(
                f"{option}: {source!r} is a {model.config.model_type} model, not a vision "
                "transformer such as DINO",
                f"set {option} to a DINO ViT, e.g. facebook/dino-vits16 or facebook/dinov2-small",
            )
        return cls(model.eval().requires_grad_(False).to(device), processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def image_embeddings(self, images: Sequence[Any]) -> torch.Tensor:
        out = [
            self.model(
                pixel_values=_pixels(self.processor, images[i : i + BATCH]).to(self.device)
            ).last_hidden_state[:, 0]
            for i in range(0, len(images), BATCH)
        ]
        return torch.nn.functional.normalize(torch.cat(out).float(), dim=1).cpu()


def strip_identifier(prompt: str, identifier: str) -> str:
    """The prompt without the identifier word: "a photo of sks dog" -> "a photo of dog"."""
    if not identifier:
        return prompt
    text = re.sub(rf"(?<![\w]){re.escape(identifier)}(?![\w])", " ", prompt, flags=re.IGNORECASE)
    return " ".join(text.split())


def clip_i(judge: ClipJudge, generated: Sequence[Any], instances: Sequence[Any]) -> float:
    """Mean CLIP image-image cosine over all (generated, instance) pairs."""
    return float((judge.image_embeddings(generated) @ judge.image_embeddings(instances).T).mean())


def clip_t(judge: ClipJudge, images: Sequence[Any], prompts: Sequence[str], *, identifier: str = "") -> float:
    """Mean CLIP image-text cosine between each image and its own prompt (identifier removed)."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    texts = [strip_identifier(p, identifier) for p in prompts]
    return float((judge.image_embeddings(images) * judge.text_embeddings(texts)).sum(dim=1).mean())


def dino(judge: DinoJudge, generated: Sequence[Any], instances: Sequence[Any]) -> float:
    """Mean DINO CLS cosine over all (generated, instance) pairs."""
    return float((judge.image_embeddings(generated) @ judge.image_embeddings(instances).T).mean())
