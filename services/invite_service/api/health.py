"""`/healthz` (the process is up), `/readyz` (it can do its job end to end) and `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.broker_resets import reset_check
from services.common.heartbeat import live_processes
from services.invite_service.api.deps import Broker, ReadPool, Settings

router = APIRouter(tags=["health"])

BACKGROUND_PROCESSES = ("relay", "notifier", "projector")

# The status list's lag: the log's head minus the highest position it applied (the read
# side's projection_positions table, read by SQL: the write side never imports it).
_PROJECTION_LAG = """
    SELECT GREATEST(0, (SELECT COALESCE(max(notification_id), 0) FROM porchlight_events)
                       - COALESCE((SELECT position FROM projection_positions WHERE projection = 'status_list'), 0))
"""


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(pool: ReadPool, broker: Broker, settings: Settings) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await pool.fetchval("SELECT 1")
        checks["postgres"] = "ok"
        live = await live_processes(pool)
        broker_reset = await reset_check(pool, settings.access_topic)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["postgres"] = f"unreachable: {exc.__class__.__name__}"
        live = set()
        broker_reset = "unknown"
    try:
        lag = f"{await pool.fetchval(_PROJECTION_LAG)} events behind the event store"
    except Exception as exc:  # noqa: BLE001 - informational: never what makes the API unready
        lag = f"unknown: {exc.__class__.__name__}"
    checks["broker"] = "ok" if await broker.reachable() else "unreachable"
    for process in BACKGROUND_PROCESSES:
        checks[process] = "ok" if process in live else "not running"
    ready = all(v == "ok" for v in checks.values())
    # Informational, so not part of `ready`: after a reset email is late while the relay re-publishes, not lost.
    checks["broker_reset"] = broker_reset
    checks["projection_lag"] = lag  # informational too: the list is late, not wrong
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
