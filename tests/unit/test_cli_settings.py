"""A configuration error names the variable and the rule it broke, never the value given."""

from __future__ import annotations

from typer.testing import CliRunner

from deploy.cli import app

SHORT_SECRET = "tooshort-but-still-secret-42"


def test_a_short_secret_is_named_with_its_rule_and_its_value_is_not_printed():
    env = {"PORCHLIGHT_SECRET_KEY": SHORT_SECRET, "DATABASE_URL": "postgresql://db", "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    result = CliRunner().invoke(app, ["notifier"], env=env)
    assert result.exit_code == 2
    assert "PORCHLIGHT_SECRET_KEY" in result.output
    assert "must be at least 32 characters" in result.output
    assert SHORT_SECRET not in result.output
    assert "input_value" not in result.output


def test_every_missing_variable_is_named():
    env = {"PORCHLIGHT_SECRET_KEY": "", "DATABASE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""}
    result = CliRunner().invoke(app, ["relay"], env={k: None for k in env})
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.output and "KAFKA_BOOTSTRAP_SERVERS" in result.output
    assert "required" in result.output.lower()
