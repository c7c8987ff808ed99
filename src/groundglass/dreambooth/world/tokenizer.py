"""The world's CLIP tokenizer: one token per word of the world (and ``sks``), any other text by characters.

It reuses :func:`groundglass.dreambooth.tiny.write_tiny_tokenizer`, which writes one chain of BPE
merges per word. Chains can collide (``large``'s ``l a`` merge outranks ``plain``'s ``p l``), so the
word order is repaired until every word is a single token: a word that splits moves to the front,
where its merges rank first.
"""

from __future__ import annotations

import json
from pathlib import Path

from groundglass.dreambooth.tiny import write_tiny_tokenizer

MAX_TOKENS = 16  # the longest prompt of the world is 14 tokens with start and end


def write_world_tokenizer(folder: Path, words: tuple[str, ...], *, max_length: int = MAX_TOKENS) -> int:
    """Write a CLIPTokenizer folder where each of ``words`` is one token; return the vocabulary size."""
    from transformers import CLIPTokenizer

    order = list(dict.fromkeys(words))
    for _ in range(len(order) + 1):
        vocab_size = write_tiny_tokenizer(folder, tuple(order))
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["model_max_length"] = max_length
        config_path.write_text(json.dumps(config), encoding="utf-8")
        tokenizer = CLIPTokenizer.from_pretrained(folder)
        split = [w for w in order if len(tokenizer.tokenize(w)) != 1]
        if not split:
            return vocab_size
        order = split + [w for w in order if w not in split]
    raise RuntimeError(f"cannot make single tokens of {split}")
