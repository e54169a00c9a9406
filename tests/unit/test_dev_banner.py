"""What `porchlight dev` prints and writes to dev.env once it is ready."""

from __future__ import annotations

import shlex
import stat

from deploy.dev import DevStack


def _stack(tmp_path, database_url: str) -> DevStack:
    stack = DevStack(8123, tmp_path)
    stack.env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092", "SMTP_HOST": "mail"}
    stack.metrics_urls = {"api": "http://127.0.0.1:8123/metrics", "relay": "http://127.0.0.1:9101/metrics"}
    return stack


def test_the_banner_names_the_broker_and_every_metrics_address_but_no_database_password(tmp_path):
    banner = _stack(tmp_path, "postgresql://porch:hunter2-db-password@db.internal:5432/porch").banner("TOKEN")
    assert "kafka-1:9092,kafka-2:9092" in banner
    assert "http://127.0.0.1:8123/metrics" in banner and "http://127.0.0.1:9101/metrics" in banner
    assert "db.internal:5432/porch" in banner and "hunter2-db-password" not in banner


def test_dev_env_is_private_and_reads_back_as_the_shell_would(tmp_path):
    stack = _stack(tmp_path, "postgresql://postgres:@/postgres?host=/tmp/a dir/pg")
    stack.write_dev_env("TOKEN")
    path = tmp_path / "dev.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dict(word.split("=", 1) for word in shlex.split(path.read_text()))
    assert values["DATABASE_URL"] == "postgresql://postgres:@/postgres?host=/tmp/a dir/pg"
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092"
    assert values["METRICS_RELAY"] == "http://127.0.0.1:9101/metrics" and values["STAFF_TOKEN"] == "TOKEN"
