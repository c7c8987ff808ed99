"""Checkpoint writing: atomic files, a clear error when the disk is full, and where ``last.ckpt`` lives.

``AtomicCheckpointIO`` writes to a temporary file in the target folder, fsyncs it and renames it
over the old file, so a crash or a full disk leaves the previous checkpoint whole. Lightning's own
``TorchCheckpointIO`` goes through fsspec and turns a full disk into an opaque error from torch's
zip writer; here the OSError under it is kept and reported as a GroundglassError.

``DreamBoothCheckpoint`` is Lightning's ``ModelCheckpoint`` with DreamBooth defaults: one folder
per run (``<default_root_dir>/checkpoints``, so ``--ckpt_path last`` finds it across runs), a
``last.ckpt`` every ``every_n_train_steps`` and always at the end of training.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from groundglass.errors import GroundglassError

_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class _RecordingWriter:
    """A file wrapper that remembers the OSError torch's zip writer swallows."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writer: _RecordingWriter | None = None
    try:
        with open(tmp, "wb") as handle:
            writer = _RecordingWriter(handle)
            torch.save(obj, writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = writer.error if writer is not None and writer.error is not None else exc
        if isinstance(cause, OSError):
            if cause.errno in _DISK_FULL:
                raise GroundglassError(
                    f"out of disk space while saving checkpoint {path} ({cause.strerror}); the previous "
                    "checkpoint is kept",
                    "free disk space (or point checkpoint.dirpath at a disk with room) and resume with "
                    "--ckpt_path last",
                ) from exc
            raise GroundglassError(
                f"cannot write checkpoint {path}: {cause.strerror or cause}",
                "check that the folder is writable",
            ) from exc
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO whose saves are atomic and report a full disk clearly."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_torch_save(checkpoint, path)


class DreamBoothCheckpoint(ModelCheckpoint):
    """Checkpoints of a DreamBooth run.

    Args:
        dirpath: folder of the checkpoints; default ``<trainer.default_root_dir>/checkpoints``.
        filename: name of the kept step checkpoints (when save_top_k is not 0).
        every_n_train_steps: write ``last.ckpt`` (and a step checkpoint) every this many optimizer steps.
        save_top_k: how many step checkpoints to keep besides last.ckpt (-1: all, 0: none).
        save_last: keep ``last.ckpt`` (needed for ``--ckpt_path last``).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        filename: str = "step={step}",
        every_n_train_steps: int = 500,
        save_top_k: int = 0,
        save_last: bool = True,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            every_n_train_steps=every_n_train_steps,
            save_top_k=save_top_k,
            save_last=save_last,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save the final step too (ModelCheckpoint saves only at multiples of every_n_train_steps)."""
        if (
            self.save_last
            and not trainer.sanity_checking
            and not trainer.fast_dev_run
            and self._last_global_step_saved != trainer.global_step
        ):
            candidates = self._monitor_candidates(trainer)
            if self.save_top_k != 0:
                self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
