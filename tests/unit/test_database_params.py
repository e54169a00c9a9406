"""The one DATABASE_URL, in each shape our drivers take it (services/common/database.py)."""

from services.common.database import asyncpg_connect_args, eventsourcing_env, quote_ident


def test_asyncpg_arguments_name_the_database_the_event_stores_env_names():
    env = eventsourcing_env("postgresql://app:s%40cret@db.internal:6543/porchlight")
    assert asyncpg_connect_args(env) == {
        "host": "db.internal", "port": 6543, "user": "app", "password": "s@cret", "database": "porchlight",
    }


def test_a_socket_directory_and_no_password_carry_over():
    env = eventsourcing_env("postgresql://postgres:@/postgres?host=/run/pg")
    assert asyncpg_connect_args(env) == {
        "host": "/run/pg", "port": 5432, "user": "postgres", "password": None, "database": "postgres",
    }


def test_an_identifier_is_quoted_with_its_quotes_doubled():
    assert quote_ident("porchlight_events") == '"porchlight_events"'
    assert quote_ident('odd"name') == '"odd""name"'
