"""How the app takes DreamBooth in: the service on ``app.state.finetune``, its routes, its worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from groundglass.server.finetune.api import router
from groundglass.server.finetune.service import FineTuning
from groundglass.server.finetune.worker import FineTuneWorker

if TYPE_CHECKING:
    from fastapi import FastAPI

    from groundglass.server.state import ServerState


def install(app: FastAPI, st: ServerState) -> FineTuning:
    """Add the service and its routes (before the chat routes: ``/v1/models`` lists image models too)."""
    service = FineTuning(st.settings, st.db, st.ledger, st.pricing)
    app.state.finetune = service
    app.include_router(router)
    return service


def start(service: FineTuning) -> None:
    service.worker = FineTuneWorker(service)
    service.worker.start()


def stop(service: FineTuning) -> None:
    if service.worker is not None:
        service.worker.stop()
        service.worker = None
