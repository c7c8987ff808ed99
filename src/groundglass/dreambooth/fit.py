"""``groundglass dreambooth fit``: Lightning's LightningCLI over the DreamBooth module and data.

The config has the sections LightningCLI gives (``trainer``, ``model``, ``data``) plus
``checkpoint`` (:class:`~groundglass.dreambooth.checkpoints.DreamBoothCheckpoint`), ``sampling``
(:class:`~groundglass.dreambooth.callbacks.SampleImages`) and ``ckpt_path`` (``last`` or a file) to
resume. ``model.seed`` seeds everything and is linked into ``data.seed``; ``model.base_model``,
``revision``, ``local_files_only`` and ``vae`` are linked into the data section (which uses them to
generate class images). jsonargparse reports unknown keys and wrong types; ``--print_config`` prints the
full config.

Every run writes checkpoints to ``<trainer.default_root_dir>/checkpoints`` (atomically, see
:mod:`~groundglass.dreambooth.checkpoints`), so ``--ckpt_path last`` finds the latest one.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from groundglass.dreambooth.callbacks import GracefulStop, SampleImages, StepProgressBar, TrainingMonitor
from groundglass.dreambooth.checkpoints import AtomicCheckpointIO, DreamBoothCheckpoint
from groundglass.dreambooth.data import DreamBoothDataModule
from groundglass.dreambooth.family import check_resolution
from groundglass.dreambooth.module import DreamBoothModule
from groundglass.errors import GroundglassError

PROG = "groundglass dreambooth fit"
DESCRIPTION = (
    "Fine-tune Stable Diffusion on a few photos of a subject (DreamBooth). "
    "Example: groundglass dreambooth fit --config configs/dreambooth/unet.yaml"
)
USAGE = f"{PROG} --config run.yaml [--print_config] [--ckpt_path last] [--SECTION.KEY VALUE ...]"
TRAINER_DEFAULTS: dict[str, Any] = {"max_steps": 800, "log_every_n_steps": 10}
# Lightning warnings that do not apply to this trainer's design.
QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*module\(s\) in eval mode.*",  # the VAE (and a frozen text encoder) are meant to be in eval mode
    r".*Checkpoint directory .* exists and is not empty.*",  # resuming writes into the same folder
    r".*`IterableDataset` has `__len__`.*",
    r".*Total length of `DataLoader` across ranks is zero.*",
    r".*LightningCLI's args parameter is intended to run from within Python.*",  # typer passes them on
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
LINKED = ("base_model", "revision", "local_files_only", "seed", "vae")


class DreamBoothCLI(LightningCLI):
    """LightningCLI with DreamBooth's sections, links and defaults; it does not run anything itself."""

    def __init__(
        self,
        args: list[str] | None = None,
        model_class: type[DreamBoothModule] = DreamBoothModule,
        callbacks: list[Callback] | None = None,
    ) -> None:
        super().__init__(
            model_class,
            DreamBoothDataModule,
            run=False,
            args=args,
            trainer_defaults={
                **TRAINER_DEFAULTS,
                "callbacks": [GracefulStop(), TrainingMonitor(), *(callbacks or [])],
            },
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            load_from_checkpoint_support=False,
            parser_kwargs={"prog": PROG, "description": DESCRIPTION, "usage": USAGE},
        )

    def add_default_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """No ``seed_everything``: ``model.seed`` is the one seed of a run."""

    def _set_seed(self) -> None:
        seed_everything(int(self.config.model.seed), workers=True, verbose=False)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Resume: 'last' (the run's checkpoints/last.ckpt) or a .ckpt file.",
        )
        parser.add_lightning_class_args(DreamBoothCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleImages, "sampling")
        for key in LINKED:
            parser.link_arguments(f"model.{key}", f"data.{key}")

    def before_instantiate_classes(self) -> None:
        config = self.config
        max_steps = config.trainer.max_steps
        if max_steps is None or max_steps < 1:
            raise GroundglassError(
                f"trainer.max_steps must be a positive number of optimizer steps (got {max_steps})",
                "set e.g. trainer.max_steps: 800",
            )
        if config.checkpoint.dirpath is None:
            root = config.trainer.default_root_dir or os.getcwd()
            config.checkpoint.dirpath = str(Path(root) / "checkpoints")
        self.resolved_ckpt_path = self.resolve_ckpt_path()  # before the model loads: fail fast

    def instantiate_classes(self) -> None:
        """As LightningCLI's, but a GroundglassError raised by a configured class (a callback's bad setting)
        reaches the user as itself rather than inside jsonargparse's "does not validate" message."""
        try:
            super().instantiate_classes()
        except GroundglassError:
            raise
        except Exception as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, GroundglassError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise cause from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        strategy = str(trainer_config.get("strategy", "")).lower()
        if "deepspeed" not in strategy and not any(isinstance(p, CheckpointIO) for p in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
        configured = trainer_config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if trainer_config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in configured
        ):
            self.trainer_defaults["callbacks"].append(StepProgressBar())
        try:
            return super().instantiate_trainer(**kwargs)
        except MisconfigurationException as exc:
            raise GroundglassError(
                f"trainer settings: {exc}", "fix the trainer section of the config"
            ) from exc

    def resolve_ckpt_path(self) -> str | None:
        """``last`` becomes the run's last.ckpt (None for a first run); a missing file is an error.

        A new run (no ckpt_path) refuses to start over an earlier run's last.ckpt.
        """
        ckpt_path = self.config.ckpt_path
        if not ckpt_path:
            last = Path(self.config.checkpoint.dirpath) / "last.ckpt"
            if last.exists():
                raise GroundglassError(
                    f"{last} already exists: an earlier run trained in this folder",
                    "resume it with --ckpt_path last, or start anew in another trainer.default_root_dir "
                    "(or delete the old checkpoints)",
                )
            return None
        if ckpt_path == "last":
            last = Path(self.config.checkpoint.dirpath) / "last.ckpt"
            if not last.is_file():
                print(f"no checkpoint at {last} yet: starting from step 0", file=sys.stderr)
                return None
            return str(last)
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise GroundglassError(
                f"--ckpt_path {ckpt_path}: no such checkpoint file",
                "pass 'last' or the path of a .ckpt written by this command",
            )
        return str(path)


def run_fit(args: list[str] | None = None, callbacks: list[Callback] | None = None) -> int:
    """Parse ``args`` like the command line, train, and return the exit code.

    ``callbacks`` join the run's own (a program that runs fits, such as the server, watches with them).
    """
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")  # Lightning's own calls, not the user's
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning").propagate = False  # it has its own handler: print once, not twice
    # Lightning's handler holds the sys.stderr of the moment lightning was imported; a program that has
    # replaced stderr since (a test's capture, closed by now) would get "I/O operation on closed file".
    for name in ("lightning", "lightning.pytorch"):
        for handler in logging.getLogger(name).handlers:
            if type(handler) is logging.StreamHandler and handler.stream is not sys.stdout:
                handler.stream = sys.stderr  # not setStream: it flushes the old, perhaps closed, stream
    cli = DreamBoothCLI(args=args, callbacks=callbacks)
    check_resolution(int(cli.datamodule.resolution), cli.model.vae.config, cli.model.family)  # before priors
    ckpt_path = cli.resolved_ckpt_path
    trainer = cli.trainer
    try:
        trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    except MisconfigurationException as exc:
        raise GroundglassError(f"trainer settings: {exc}", "fix the trainer section of the config") from exc
    stop = next((cb for cb in trainer.callbacks if isinstance(cb, GracefulStop)), None)
    checkpoint = trainer.checkpoint_callback
    last = getattr(checkpoint, "last_model_path", "") or "(none)"
    if stop is not None and stop.received is not None:
        if trainer.is_global_zero:
            print(
                f"stopped by {signal.Signals(stop.received).name} at step {trainer.global_step}; "
                f"checkpoint: {last}; resume with --ckpt_path last",
                file=sys.stderr,
            )
        return 128 + int(stop.received)
    if trainer.is_global_zero:
        print(f"trained to step {trainer.global_step}; checkpoint: {last}", file=sys.stderr)
    return 0
