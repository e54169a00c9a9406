"""Structured logging for every process: console for people, JSON for log shippers.

Log lines carry ids (account, invitation, event), never tokens, codes, passwords or
keys; the redaction processor is a second line of defence for keys that look secret.
"""

from __future__ import annotations

import logging
import sys

import structlog

_SECRET_KEYS = {"token", "password", "code", "secret", "authorization", "cookie", "session"}


def _redact(_logger, _method, event_dict):
    for key in list(event_dict):
        if any(part in key.lower() for part in _SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


_BROKER_FIELDS = ("topic", "group_id", "message_id")


def _broker_fields(_logger, _method, event_dict):
    """The topic, group and message id FastStream passes as `extra=`, where it has them."""
    record = event_dict.get("_record")
    for name in _BROKER_FIELDS:
        value = getattr(record, name, None)
        if value:
            event_dict.setdefault(name, value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "console", process: str = "porchlight") -> None:
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _broker_fields,
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(process=process)
    # FastStream's service lines (joins, partition assignments, handler errors) go through
    # this format too, rather than its own handler's (see services/common/kafka.py).
    # Library chatter that is noise at INFO.
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "mail.log"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
