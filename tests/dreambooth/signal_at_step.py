"""A callback for tests: the process sends itself a real signal after a given optimizer step.

It stands in for a scheduler pre-empting a job at a known moment, so a test can stop a run at step
N/2 with exactly the config of the straight run (same max_steps, so the same LR schedule).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from lightning.pytorch.callbacks import Callback


class SignalAtStep(Callback):
    def __init__(self, step: int, signum: int = int(signal.SIGTERM)) -> None:
        self.step = step
        self.signum = signum
        self.sent = False

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.sent and trainer.global_step >= self.step:
            self.sent = True
            os.kill(os.getpid(), self.signum)
