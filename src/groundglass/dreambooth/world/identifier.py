"""A copy of the base model whose identifier starts as a word of the world instead of its own row.

The base model never saw ``sks`` in pretraining, so its input embedding is still the random row it was
initialised with, at under half the length of a trained word's (0.15 against 0.17-0.39, mean 0.32).
Fine-tuning then binds the subject to a token that barely moves the text encoder's output: where a
colour word is present, the colour word decides what is drawn. :func:`base_with_identifier_from`
writes a copy of the base model whose ``sks`` row is the mean direction of some words' rows, scaled
to their mean length (textual inversion's "initializer token", for several words).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from groundglass.dreambooth.world.generator import IDENTIFIER


def base_with_identifier_from(base: Path, words: Sequence[str], out: Path) -> Path:
    """Copy ``base`` to ``out`` with the identifier's input embedding set from ``words``; return ``out``."""
    from safetensors.torch import load_file, save_file
    from transformers import CLIPTokenizer

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out)
    tokenizer = CLIPTokenizer.from_pretrained(out / "tokenizer")
    ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)) for w in (IDENTIFIER, *words)]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"each of {[IDENTIFIER, *words]} must be one token of the world's tokenizer")
    path = out / "text_encoder" / "model.safetensors"
    weights = load_file(path)
    key = next(k for k in weights if k.endswith("token_embedding.weight"))
    rows = weights[key][[i[0] for i in ids[1:]]].float()
    direction = rows.mean(0)
    new = direction / direction.norm() * rows.norm(dim=1).mean()
    weights[key][ids[0][0]] = new.to(weights[key].dtype)
    save_file(weights, path, metadata={"format": "pt"})
    return out
