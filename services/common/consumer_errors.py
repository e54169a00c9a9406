"""What a failed message handling means: can a retry fix it, and does it count toward giving up?

Every exception a consumer's handler raises falls in one category (`classify`):

| category        | examples                                                     | what happens                   |
|-----------------|--------------------------------------------------------------|--------------------------------|
| `unprocessable` | body fails its model; bad JSON or UTF-8; SQLSTATE 22 (data:   | dead-lettered at once          |
|                 | number out of range, NUL in text, bad text representation);   |                                |
|                 | 23 except unique/exclusion (NOT NULL, CHECK, foreign key);   |                                |
|                 | 54 (a value too large to store); `Unprocessable`             |                                |
| `transient`     | 40 (serialization failure, deadlock), 55 (lock not           | retried with backoff, dead-    |
|                 | available), 57014 (statement timeout), 23505/23P01 (a racing | lettered after the bound       |
|                 | writer), other PostgreSQL errors, non-retriable Kafka errors |                                |
| `unexpected`    | anything else: a bug in our code                             | like `transient`               |
| `outage`        | OSError (refused, reset, timeout), asyncpg.InterfaceError,   | retried with capped backoff;   |
|                 | 08 (connection), 57P01-03 (shutdown, cannot connect now), 53 | counts toward the bound only   |
|                 | (too many connections, disk full), 58 (I/O); retriable Kafka | while the dependency's probe   |
|                 | errors; `Outage` (a provider, e.g. the notifier's SMTP       | answers (see dead_letters.py)  |
|                 | relay); 42/28/3D/3F/0A (our SQL or grants don't match the     |                                |
|                 | database: every message would fail until a migration)        |                                |

Why an outage does not simply count: the hardening issue asks that transient failures be
retried "a bounded number of times, then dead-lettered", and that no fault lose an invite.
While PostgreSQL restarts, every message fails; dead-lettering each after N tries would
empty the topic into the DLQ. So a failure caused by an unreachable dependency counts only
when a cheap probe of that dependency succeeds (the database answers `SELECT 1`): then the
dependency is up and the failure is this message's own. Without a probe it never counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
from aiokafka.errors import KafkaError, KafkaTimeoutError
from fast_depends.exceptions import ValidationError as ArgumentsInvalid
from pydantic import ValidationError


class Category(StrEnum):
    UNPROCESSABLE = "unprocessable"
    TRANSIENT = "transient"
    UNEXPECTED = "unexpected"
    OUTAGE = "outage"


# Dependencies an outage can be about; a consumer may give a health probe for each.
DATABASE = "database"
BROKER = "broker"


class Unprocessable(Exception):
    """Raise when no retry can ever handle the message (the consumer knows it is bad)."""


class Outage(Exception):
    """Raise (or subclass) when a dependency other than PostgreSQL, say an email provider,
    cannot be reached. `dependency` names the probe that decides whether it counts; None
    means every probe the consumer has must answer."""

    dependency: str | None = None


@dataclass(frozen=True)
class Verdict:
    category: Category
    dependency: str | None = None  # for outages: whose probe decides whether it counts

    @property
    def retried(self) -> bool:
        return self.category is not Category.UNPROCESSABLE


_UNPROCESSABLE_TYPES = (ValidationError, ArgumentsInvalid, json.JSONDecodeError, UnicodeDecodeError, Unprocessable)

# SQLSTATE (5 characters, or the 2-character class) → category. Our SQL is static and takes
# the message only as parameters, so class 42 (undefined table, syntax) and its kin cannot
# be caused by a message: every message would fail alike, which is an outage of the schema.
_SQLSTATES = {
    "22": Category.UNPROCESSABLE,
    "23": Category.UNPROCESSABLE,
    "23505": Category.TRANSIENT,  # unique: a concurrent writer of the same row; the retry sees it
    "23P01": Category.TRANSIENT,  # exclusion: likewise
    "54": Category.UNPROCESSABLE,
    "40": Category.TRANSIENT,
    "55": Category.TRANSIENT,
    "57014": Category.TRANSIENT,  # query canceled (statement_timeout)
    "57": Category.OUTAGE,
    "08": Category.OUTAGE,
    "53": Category.OUTAGE,
    "58": Category.OUTAGE,
    "42": Category.OUTAGE,
    "28": Category.OUTAGE,
    "3D": Category.OUTAGE,
    "3F": Category.OUTAGE,
    "0A": Category.OUTAGE,
}
# These outages are not fixed by the database coming back, so no probe may count them.
_SCHEMA_CLASSES = {"42", "28", "3D", "3F", "0A"}


def classify(exc: BaseException) -> Verdict:
    if isinstance(exc, _UNPROCESSABLE_TYPES):
        return Verdict(Category.UNPROCESSABLE)
    if isinstance(exc, Outage):
        return Verdict(Category.OUTAGE, exc.dependency)
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        category = _SQLSTATES.get(state) or _SQLSTATES.get(state[:2]) or Category.TRANSIENT
        return Verdict(category, "schema" if state[:2] in _SCHEMA_CLASSES else DATABASE)
    if isinstance(exc, asyncpg.InterfaceError):
        return Verdict(Category.OUTAGE, DATABASE)
    if isinstance(exc, KafkaError):
        if exc.retriable or isinstance(exc, KafkaTimeoutError):
            return Verdict(Category.OUTAGE, BROKER)
        return Verdict(Category.TRANSIENT)
    if isinstance(exc, OSError):  # refused, reset, timed out: from whichever dependency
        return Verdict(Category.OUTAGE)
    return Verdict(Category.UNEXPECTED)


def reason(exc: BaseException) -> str:
    """The full reason, for the dead-letter header (which travels with the message anyway)."""
    return f"{type(exc).__name__}: {exc}"[:2000]


# Values a database or validation error quotes back: an email, a name. Logs must not carry them.
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_ARGUMENT = re.compile(r"(query argument \$\d+): .*?( \([^()]*\))?$")


def log_summary(exc: BaseException) -> str:
    """The reason's first line without the values it quotes, for log lines."""
    first = reason(exc).splitlines()[0][:300]
    return _QUOTED.sub("…", _ARGUMENT.sub(r"\1: …\2", first))
