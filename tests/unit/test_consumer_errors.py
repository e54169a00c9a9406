"""The classification table of consumer failures, and what log lines keep out."""

import json

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError

from services.common.consumer_errors import (
    BROKER,
    DATABASE,
    Category,
    Outage,
    Unprocessable,
    classify,
    log_summary,
)
from services.common.dead_letters import RetryPolicy
from services.common.settings import CommonSettings


class _Model(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate({"n": "x"})
    return caught.value


class _ProviderDown(Outage):
    pass


@pytest.mark.parametrize(
    ("exc", "category", "dependency"),
    [
        (_validation_error(), Category.UNPROCESSABLE, None),
        (json.JSONDecodeError("Expecting value", "x", 0), Category.UNPROCESSABLE, None),
        (Unprocessable("no"), Category.UNPROCESSABLE, None),
        # 2**40 into an int column (asyncpg refuses it before sending), NUL in text, a bad value
        (asyncpg.DataError("invalid input for query argument $3: 1 (value out of int32 range)"),
         Category.UNPROCESSABLE, DATABASE),
        (asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
         Category.UNPROCESSABLE, DATABASE),
        (asyncpg.NumericValueOutOfRangeError("out of range"), Category.UNPROCESSABLE, DATABASE),
        (asyncpg.NotNullViolationError("null"), Category.UNPROCESSABLE, DATABASE),
        (asyncpg.ForeignKeyViolationError("fk"), Category.UNPROCESSABLE, DATABASE),
        (asyncpg.CheckViolationError("check"), Category.UNPROCESSABLE, DATABASE),
        (asyncpg.UniqueViolationError("dup"), Category.TRANSIENT, DATABASE),
        (asyncpg.SerializationError("serialize"), Category.TRANSIENT, DATABASE),
        (asyncpg.DeadlockDetectedError("deadlock"), Category.TRANSIENT, DATABASE),
        (asyncpg.LockNotAvailableError("lock"), Category.TRANSIENT, DATABASE),
        (asyncpg.QueryCanceledError("statement timeout"), Category.TRANSIENT, DATABASE),
        (asyncpg.ConnectionDoesNotExistError("gone"), Category.OUTAGE, DATABASE),
        (asyncpg.CannotConnectNowError("starting up"), Category.OUTAGE, DATABASE),
        (asyncpg.TooManyConnectionsError("too many"), Category.OUTAGE, DATABASE),
        (asyncpg.AdminShutdownError("shutdown"), Category.OUTAGE, DATABASE),
        (asyncpg.InterfaceError("connection is closed"), Category.OUTAGE, DATABASE),
        (asyncpg.UndefinedTableError("no table"), Category.OUTAGE, "schema"),
        (ConnectionRefusedError(111, "refused"), Category.OUTAGE, None),
        (TimeoutError(), Category.OUTAGE, None),
        (_ProviderDown("smtp refused"), Category.OUTAGE, None),
        (KafkaConnectionError(), Category.OUTAGE, BROKER),
        (KafkaTimeoutError(), Category.OUTAGE, BROKER),
        (MessageSizeTooLargeError(), Category.TRANSIENT, None),
        (KeyError("email"), Category.UNEXPECTED, None),
    ],
)
def test_every_failure_has_a_category(exc, category, dependency):
    verdict = classify(exc)
    assert (verdict.category, verdict.dependency) == (category, dependency)


def test_log_lines_leave_out_the_values_an_error_quotes():
    leaky = [
        asyncpg.DataError("invalid input for query argument $3: 'ana@example.com' (expected int, got str)"),
        asyncpg.InvalidTextRepresentationError('invalid input syntax for type uuid: "ana@example.com"'),
    ]
    for exc in leaky:
        summary = log_summary(exc)
        assert "ana@example.com" not in summary and type(exc).__name__ in summary
    assert "(expected int, got str)" in log_summary(leaky[0])


def test_backoff_doubles_up_to_the_cap_with_jitter():
    policy = RetryPolicy(attempts=5, delay=1.0, max_delay=5.0)
    for tries, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (30, 5.0)]:
        delay = policy.backoff(tries)
        assert ceiling / 2 <= delay <= ceiling


def test_retry_bounds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONSUMER_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("CONSUMER_RETRY_MAX_DELAY_SECONDS", "12.5")
    settings = CommonSettings(database_url="postgresql://p@localhost/p", kafka_bootstrap_servers="localhost:9092")
    policy = RetryPolicy.from_settings(settings)
    assert (policy.attempts, policy.delay, policy.max_delay) == (7, RetryPolicy().delay, 12.5)
