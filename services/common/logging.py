"""Structured logging for every process: console for people, JSON for log shippers.

Log lines carry ids (account, invitation, event), never tokens, codes, passwords or
keys; the redaction processor is a second line of defence for keys that look secret.

Tracebacks are short and never show local variables. structlog's console default (rich,
where installed) prints every frame's locals: for one failed request that was the
request's headers, cookie and token 19 times over, ~7 s of CPU and 0.8 MB of log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import TextIO

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import ExcInfo

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


# The innermost frames say where it failed; the outer ones are the server's and framework's.
TRACEBACK_FRAMES = 8


def short_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """Console: the innermost frames of each exception in the chain, without locals."""
    sio.write("\n")
    traceback.print_exception(*exc_info, limit=-TRACEBACK_FRAMES, file=sio)


def _renderers(fmt: str) -> list:
    if fmt == "json":
        # A structured `exception` field (type, message, frames) for log shippers, without locals.
        dict_traceback = ExceptionDictTransformer(show_locals=False, max_frames=TRACEBACK_FRAMES)
        return [ExceptionRenderer(dict_traceback), structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=short_traceback)]


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged: a command run in-process under
    a test runner sees a stderr that is swapped in and then closed, and a handler holding it
    would fail every later line ("I/O operation on closed file")."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(
    level: str = "INFO", fmt: str = "console", process: str = "porchlight", stream: TextIO | None = None
) -> None:
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
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(process=process)
    # FastStream's service lines (joins, partition assignments, handler errors) go through
    # this format too, rather than its own handler's (see services/common/kafka.py).
    # Library chatter that is noise at INFO (httpx's names every URL it calls, tokens included).
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "mail.log", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
