"""Prompts to the UNet's text conditioning: token ids, the text encoders' outputs, and their caches.

A training run has few prompts (the instance prompt, the class prompt, perhaps a caption per image),
so each prompt's token ids are kept per device and encoder. When the text encoders are frozen, their
outputs (hidden states and, for SDXL, the pooled embedding) are encoded once per prompt on the
training device (:func:`~groundglass.dreambooth.cache.encode_prompt_cache`) and each batch's
concatenation is kept too; a step then reads them instead of running the encoders.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from groundglass.dreambooth.cache import encode_prompt_cache
from groundglass.dreambooth.sdxl import encode_text, token_ids

Conditioning = tuple[torch.Tensor, torch.Tensor | None]  # hidden states, pooled embedding (SDXL) or None


class PromptEncoder:
    """Token ids and text-encoder outputs of prompts, with the caches described above.

    The encoders are passed to each call rather than held: the module decides where they are (a
    registered submodule when they train, held aside when frozen).
    """

    def __init__(self, tokenizers: list[Any]) -> None:
        self.tokenizers = tokenizers
        self._ids: dict[tuple[str, str, int], torch.Tensor] = {}
        self.cache: dict[str, Conditioning] = {}
        self._by_prompts: dict[tuple[str, ...], Conditioning] = {}

    def input_ids(self, prompts: list[str], device: torch.device, which: int = 0) -> torch.Tensor:
        """Token ids of ``prompts`` for text encoder ``which`` (0, or 1 for SDXL's second), on ``device``."""
        tokenizer = self.tokenizers[which]
        rows = []
        for prompt in prompts:
            key = (prompt, str(device), which)
            if key not in self._ids:
                self._ids[key] = token_ids(tokenizer, [prompt])[0].to(device)
            rows.append(self._ids[key])
        return torch.stack(rows)

    def encode(
        self, encoders: list[Any], prompts: list[str], *, device: torch.device, grad: bool
    ) -> Conditioning:
        """Run the encoders (where they are) on ``prompts``; the outputs go to ``device``."""
        context = nullcontext() if grad else torch.no_grad()
        with context:
            ids = [self.input_ids(prompts, next(e.parameters()).device, i) for i, e in enumerate(encoders)]
            hidden, pooled = encode_text(encoders, ids)
            return hidden.to(device), None if pooled is None else pooled.to(device)

    def encode_each(
        self,
        encoders: list[Any],
        prompts: list[str],
        *,
        device: torch.device,
        context: Callable[[], AbstractContextManager[Any]],
    ) -> dict[str, Conditioning]:
        """Each prompt's conditioning on its own (for the cache), encoded under ``context``."""

        def encode(batch: list[str]) -> Conditioning:
            ids = [self.input_ids(batch, next(e.parameters()).device, i) for i, e in enumerate(encoders)]
            return encode_text(encoders, ids)

        cache = encode_prompt_cache(encode, prompts, context=context)
        return {p: (h.to(device), None if pl is None else pl.to(device)) for p, (h, pl) in cache.items()}

    def reset_cache(self, cache: dict[str, Conditioning] | None = None) -> None:
        """Start over with ``cache`` (or none): the batches' concatenations are dropped too."""
        self.cache = cache or {}
        self._by_prompts = {}

    def cached(
        self,
        encoders: list[Any],
        prompts: list[str],
        *,
        device: torch.device,
        context: Callable[[], AbstractContextManager[Any]],
    ) -> Conditioning:
        """The conditioning of ``prompts`` from the cache; a prompt it was not built for is encoded
        where the encoder is, once."""
        key = tuple(prompts)
        found = self._by_prompts.get(key)
        if found is None:
            missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
            if missing:
                self.cache.update(self.encode_each(encoders, missing, device=device, context=context))
            hidden = torch.cat([self.cache[p][0] for p in prompts])
            pooled_parts = [self.cache[p][1] for p in prompts]
            pooled = None if pooled_parts[0] is None else torch.cat(pooled_parts)  # type: ignore[arg-type]
            found = (hidden, pooled)
            self._by_prompts[key] = found
        return found
