"""Session-wide real infrastructure.

PostgreSQL: the server named by DATABASE_URL, else an embedded one started here.
Broker: the one named by KAFKA_BOOTSTRAP_SERVERS, else a Tansu process started here.
PORCHLIGHT_TEST_INFRA=containers (opt-in, needs Docker) uses testcontainers instead.
Tests isolate themselves with unique workspaces, emails and topics, never by truncating.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy import embedded
from deploy.migrate import migrate
from services.common.database import create_pool
from services.common.kafka import ensure_topics
from tests.helpers import SmtpServer

SECRET_KEY = "test-secret-key-" + "k" * 32
STAFF_JWT_SECRET = "test-staff-jwt-secret-" + "s" * 32


def _containers() -> bool:
    return os.environ.get("PORCHLIGHT_TEST_INFRA", "").lower() == "containers"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
    elif _containers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
    else:
        # A short path: the server's socket lives here and socket paths are length-limited.
        data_dir = Path(tempfile.mkdtemp(prefix="plpg-"))
        data_dir.chmod(0o755)
        server = embedded.start_postgres(data_dir / "pg")
        yield server.url
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif _containers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        broker = embedded.start_tansu(log_file=tmp_path_factory.mktemp("tansu") / "tansu.log")
        yield broker.bootstrap_servers
        broker.stop()


@pytest.fixture(scope="session")
async def migrated(database_url: str, kafka_bootstrap: str) -> str:
    await migrate(database_url, kafka_bootstrap)
    return database_url


@pytest.fixture(scope="session")
async def pg_pool(migrated: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer(embedded.free_port()) as server:
        yield server


@pytest.fixture
async def topic_names(kafka_bootstrap: str) -> dict[str, str]:
    """Per-test topics, so a test reads only what it caused."""
    suffix = secrets.token_hex(4)
    names = {"access": f"test.access.{suffix}", "deliveries": f"test.deliveries.{suffix}", "dlq": f"test.dlq.{suffix}"}
    await ensure_topics(kafka_bootstrap, list(names.values()))
    return names


@pytest.fixture
def base_env(migrated: str, kafka_bootstrap: str, topic_names: dict[str, str]) -> dict[str, str]:
    """Environment for a service under test: real database and broker, test secrets."""
    return {
        "DATABASE_URL": migrated,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PORCHLIGHT_SECRET_KEY": SECRET_KEY,
        "STAFF_JWT_SECRET": STAFF_JWT_SECRET,
        "ACCESS_TOPIC": topic_names["access"],
        "DELIVERIES_TOPIC": topic_names["deliveries"],
        "DLQ_TOPIC": topic_names["dlq"],
        # Every test client is 127.0.0.1: a session-long per-address sign-in limit would trip
        # across unrelated tests. test_sign_in_rate_limits.py tests that limit on its own.
        "SIGN_IN_PER_IP": "1000000",
    }
