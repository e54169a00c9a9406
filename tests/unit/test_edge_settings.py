"""TRUSTED_PROXIES: comma-separated addresses and networks, refused when one is neither."""

import pytest
from pydantic import ValidationError

from services.common.settings import ApiSettings

BASE = {"database_url": "postgresql://p@localhost/p", "kafka_bootstrap_servers": "localhost:9092",
        "porchlight_secret_key": "k" * 32, "staff_jwt_secret": "j" * 32}


def test_trusted_proxies_are_read_from_a_comma_separated_variable(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.7, 192.168.0.1/16 ,::1,")
    assert ApiSettings(**BASE).trusted_proxies == ["10.0.0.7", "192.168.0.0/16", "::1"]


def test_nobody_is_trusted_by_default(monkeypatch):
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert ApiSettings(**BASE).trusted_proxies == []
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert ApiSettings(**BASE).trusted_proxies == []


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.300", "10.0.0.0/33"])
def test_what_is_not_an_address_or_network_is_refused(monkeypatch, value):
    monkeypatch.setenv("TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="not an IP address or CIDR network"):
        ApiSettings(**BASE)
