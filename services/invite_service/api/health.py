"""`/healthz` (the process is up) and `/readyz` (it can do its job end to end)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.common.broker_resets import reset_check
from services.common.heartbeat import live_processes
from services.common.kafka import broker_reachable

router = APIRouter(tags=["health"])

BACKGROUND_PROCESSES = ("relay", "notifier", "projector")
_BROKER_CHECK_TTL = 5.0  # seconds; readiness probes come often, broker handshakes are not free


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        await state.read_pool.fetchval("SELECT 1")
        checks["postgres"] = "ok"
        live = await live_processes(state.read_pool)
        broker_reset = await reset_check(state.read_pool, state.settings.access_topic)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["postgres"] = f"unreachable: {exc.__class__.__name__}"
        live = set()
        broker_reset = "unknown"
    cached = getattr(state, "broker_check", None)
    if cached is None or time.monotonic() - cached[0] > _BROKER_CHECK_TTL:
        cached = (time.monotonic(), await broker_reachable(state.settings.kafka_bootstrap_servers))
        state.broker_check = cached
    checks["broker"] = "ok" if cached[1] else "unreachable"
    for process in BACKGROUND_PROCESSES:
        checks[process] = "ok" if process in live else "not running"
    ready = all(v == "ok" for v in checks.values())
    # Informational, so not part of `ready`: after a reset email is late while the relay re-publishes, not lost.
    checks["broker_reset"] = broker_reset
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)
