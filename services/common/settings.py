"""Settings read from the environment with the variable names of API.md.

Each process has one class; they share these bases. Secrets have no defaults: outside
`porchlight dev` (which generates and keeps them) a missing or short secret stops the
process at start instead of running with a guessable key.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts import topics

MIN_SECRET_LENGTH = 32


def _check_secret(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters (generate one with `openssl rand -hex 32`)")
    return value


Secret = Annotated[SecretStr, AfterValidator(_check_secret)]


def _split_commas(value: object) -> object:
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


def _addresses_or_networks(values: list[str]) -> list[str]:
    """Each an IP address or a CIDR network, written the way uvicorn reads it. Refused
    otherwise: uvicorn would take a typo for a literal host name that never matches."""
    checked = []
    for value in values:
        try:
            address = ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
        checked.append(str(address))
    return checked


Addresses = Annotated[list[str], NoDecode, BeforeValidator(_split_commas), AfterValidator(_addresses_or_networks)]


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(description="PostgreSQL for the event store and read models")
    kafka_bootstrap_servers: str = Field(description="Kafka (or Kafka-protocol) brokers, comma separated")
    log_level: str = "INFO"
    log_format: str = Field("console", description="`console` for people, `json` for log shippers")
    metrics_port: int | None = Field(None, description="Serve Prometheus metrics on 127.0.0.1:PORT (background processes)")
    metrics_host: str = Field(
        "127.0.0.1", description="Address the background processes' METRICS_PORT binds (0.0.0.0 for Kubernetes probes)"
    )
    # Topic names are settings so tests and staging can isolate themselves on a shared broker.
    access_topic: str = topics.ACCESS
    deliveries_topic: str = topics.DELIVERIES
    dlq_topic: str = topics.DLQ
    audit_topic: str = topics.AUDIT
    # How long a consumer's fetch may wait on the broker for data. aiokafka's 500 ms default
    # showed up whole in invite-to-email latency on Tansu (bench/email_latency.py).
    kafka_fetch_max_wait_ms: int = Field(50, ge=1, le=5000)
    # The same for consumers off the invite-to-email path (the projector's): an idle consumer
    # fetches once per wait, and the embedded broker answers a fetch only when the wait ends
    # (it does not wake on new data), so this is their idle cost against the status list's
    # delay there. A real Kafka answers as soon as data arrives: no delay, whatever the wait.
    kafka_background_fetch_max_wait_ms: int = Field(250, ge=1, le=5000)
    # A message whose handling failed is redelivered after a backoff (services/common/dead_letters.py).
    consumer_retry_attempts: int = Field(
        5, ge=1, description="Tries of a message failing transiently (deadlock, serialization) before it is dead-lettered"
    )
    consumer_retry_delay_seconds: float = Field(
        0.5, ge=0, description="Backoff before the first redelivery; doubles each time"
    )
    consumer_retry_max_delay_seconds: float = Field(
        30.0, ge=0, description="Longest backoff, also while a dependency is down"
    )


class SecretKeySettings(BaseSettings):
    porchlight_secret_key: Secret = Field(description="Derives links and codes (HMAC key)")


class ApiSettings(CommonSettings, SecretKeySettings):
    staff_jwt_secret: Secret = Field(description="HS256 secret host apps sign staff tokens with")
    public_base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Most commands a group commit puts in one event-store transaction.
    commit_batch_max: int = 200
    worker_threads: int = Field(100, description="Threads running synchronous commands")
    portal_failed_claims_per_minute: int = Field(
        30, ge=1, description="Invalid claim links one client address may open a minute before it gets 429"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused with 413")
    max_bulk_body_bytes: int = Field(
        16_777_216, ge=1024, description="The same for a bulk invite, which carries up to 10,000 rows"
    )
    trusted_proxies: Addresses = Field(
        default_factory=list,
        description="Comma-separated addresses/CIDRs whose X-Forwarded-For is believed; empty: nobody's",
    )
    max_header_bytes: int = Field(16_384, ge=4096, description="Larger request line plus headers are refused with 431")
    postmark_webhook_user: str | None = Field(None, description="Basic-auth user Postmark's webhooks must present")
    postmark_webhook_password: SecretStr | None = Field(None, description="Its password; unset: webhooks refused")
    # Client sign-in (services/invite_service/commands/sign_in.py).
    sign_in_per_email: int = Field(5, ge=1, description="Sign-in requests per email address per window, each endpoint")
    sign_in_per_ip: int = Field(30, ge=1, description="Sign-in requests per client address per window, each endpoint")
    sign_in_window_minutes: int = Field(15, ge=1, description="The window of the two limits above")
    session_idle_hours: float = Field(12, gt=0, description="A portal session unused this long ends")
    session_absolute_days: float = Field(30, gt=0, description="A portal session ends this long after sign-in")
    allow_http_portal_url: bool = Field(
        False, description="Send clients to a plain-http portal_url; `porchlight dev` only, refused elsewhere"
    )


class RelaySettings(CommonSettings):
    relay_name: str = Field("relay", description="Names the relay's stored position; one per target topic")
    audit_head_seconds: float = Field(
        5.0, gt=0, description="How often the audit chain's head is published to the audit topic (if it moved)"
    )
    relay_batch_max: int = 500
    relay_publish_timeout_ms: int = Field(
        30_000, ge=100, description="How long a publish may wait for the broker before the relay backs off and retries"
    )


class NotifierSettings(CommonSettings, SecretKeySettings):
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool | None = Field(
        None, description="true: require STARTTLS; false: never; unset: upgrade when the relay offers it"
    )
    smtp_ca_file: str | None = Field(None, description="PEM bundle that verifies the relay's certificate; default the system's")
    smtp_timeout_seconds: float = 30.0
    # The envelope and From address; the display name is the workspace's sender name.
    mail_from: str = "portal@porchlight.localhost"
    email_provider: Literal["smtp", "postmark"] = Field("smtp", description="Which provider sends email")
    notifier_group_id: str = "porchlight-notifier"
    # Delivery dependability and speed (services/notifier/ledger.py, retries.py).
    notifier_batch_max: int = Field(200, ge=1, le=5000, description="Access events claimed, sent and recorded together")
    notifier_send_concurrency: int = Field(8, ge=1, le=256, description="Messages in flight to the providers at once")
    notifier_lease_seconds: float = Field(120.0, gt=0, description="How long a claimed delivery is ours; then retried")
    notifier_max_attempts: int = Field(6, ge=1, description="Attempts of a transiently failing delivery before abandoned")
    notifier_retry_base_seconds: float = Field(
        60.0, ge=0, description="Backoff after the first failed attempt; doubles (6 attempts span about 15-30 minutes)"
    )
    notifier_retry_max_seconds: float = Field(3600.0, ge=0, description="Longest backoff between attempts")
    notifier_retry_poll_seconds: float = Field(1.0, gt=0, description="How often due retries are looked for")
    notifier_outbox_grace_seconds: float = Field(
        10.0, ge=0, description="An outcome recorded this long ago and not yet published is published by the retry loop"
    )


    # Email and SMS providers (services/notifier/providers). Base URLs are the providers' own;
    # a local stub can stand in for each.
    postmark_api_url: str = "https://api.postmarkapp.com"
    postmark_server_token: SecretStr | None = None
    postmark_message_stream: str = Field("outbound", description="Postmark's transactional message stream")
    gmail_api_url: str | None = Field(None, description="Gmail API base; unset: staff Gmail is not used")
    twilio_api_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(None, description="The sending number (E.164) or messaging service")
    provider_timeout_seconds: float = Field(15.0, gt=0, description="How long one HTTP provider call may take")

    @model_validator(mode="after")
    def _providers_configured(self) -> NotifierSettings:
        # Refuse at start rather than fail every send later.
        if self.email_provider == "postmark" and self.postmark_server_token is None:
            raise ValueError("EMAIL_PROVIDER=postmark needs POSTMARK_SERVER_TOKEN")
        twilio = (self.twilio_account_sid, self.twilio_auth_token, self.twilio_from)
        if any(twilio) and not all(twilio):
            raise ValueError("SMS needs all of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM")
        return self


class ProjectorSettings(CommonSettings):
    projector_group_id: str = "porchlight-projector"
    # Access events applied per transaction (projections/batches.py); 1 applies each alone.
    projector_batch_max: int = Field(500, ge=1, le=10_000)


class AutoinviteSettings(CommonSettings):
    trip_shares_topic: str = topics.TRIP_SHARES
    autoinvite_group_id: str = "porchlight-autoinvite"
    autoinvite_workers: int = Field(
        3, ge=1, le=64, description="With AUTOINVITE_BATCH_MAX=1: consumers in this process (up to the partition count)"
    )
    commit_batch_max: int = Field(200, ge=1, description="Most shares a group commit puts in one transaction")
    autoinvite_threads: int = Field(
        16, ge=1, le=256, description="Threads for the event store's synchronous reads (a batch's trips read at once)"
    )
    autoinvite_batch_max: int = Field(
        200, ge=1, le=10_000, description="Share events decided concurrently per fetched batch; 1: one at a time"
    )
