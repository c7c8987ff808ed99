"""Randomness as a pure function of (run seed, what, where).

Every random draw in training (data order, crop, flip, timestep, noise, VAE sample) comes from a
``torch.Generator`` seeded by :func:`derive_seed` of the run seed and the example's position in the
stream. So step N draws the same numbers whether the run got there straight or through a resume,
and two processes of a DDP run draw what one process with their joint batch would draw.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from the given parts (independent of PYTHONHASHSEED and process)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def generator(*parts: int | str) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))
