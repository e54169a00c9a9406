"""The write side's HTTP API, by audience: `staff/` (host apps and the staff UI), `portal/`
(clients), `health` (probes and metrics). `deps.py` holds every dependency alias."""

from services.invite_service.api.app import create_app

__all__ = ["create_app"]
