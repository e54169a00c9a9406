"""Settings refuse what would run wrongly: short or missing secrets, a provider without its credentials."""

import pytest
from pydantic import ValidationError

from services.common.settings import ApiSettings, NotifierSettings

BASE = {"database_url": "postgresql://p@localhost/p", "kafka_bootstrap_servers": "localhost:9092"}
KEY = "k" * 32


def test_a_short_or_missing_secret_stops_the_process(monkeypatch):
    for name in ("PORCHLIGHT_SECRET_KEY", "STAFF_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        ApiSettings(**BASE, porchlight_secret_key="short", staff_jwt_secret=KEY)
    with pytest.raises(ValidationError, match="staff_jwt_secret"):
        ApiSettings(**BASE, porchlight_secret_key=KEY)
    assert ApiSettings(**BASE, porchlight_secret_key=KEY, staff_jwt_secret=KEY).port == 8000


def test_secrets_never_show_in_a_repr():
    settings = ApiSettings(**BASE, porchlight_secret_key=KEY, staff_jwt_secret="j" * 32)
    assert KEY not in repr(settings) and "j" * 32 not in repr(settings)


def test_postmark_without_its_server_token_is_refused_rather_than_failing_every_send():
    with pytest.raises(ValidationError, match="EMAIL_PROVIDER=postmark needs POSTMARK_SERVER_TOKEN"):
        NotifierSettings(**BASE, porchlight_secret_key=KEY, email_provider="postmark")
    with pytest.raises(ValidationError):
        NotifierSettings(**BASE, porchlight_secret_key=KEY, email_provider="carrier-pigeon")
    assert NotifierSettings(**BASE, porchlight_secret_key=KEY).email_provider == "smtp"
    postmark = NotifierSettings(**BASE, porchlight_secret_key=KEY, email_provider="postmark", postmark_server_token="t" * 36)
    assert "t" * 36 not in repr(postmark)
