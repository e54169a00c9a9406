"""`porchlight dev`: the whole system on one machine, on embedded defaults.

Starts (unless the environment points elsewhere) an embedded PostgreSQL whose data lives
in the data dir, a Tansu broker, and an SMTP sink with a browsable outbox; migrates; then
runs the api, relay, notifier and projector as child processes, exactly as production
runs them. Ctrl-C stops the services first, then the infrastructure.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from deploy import embedded
from deploy.supervisor import Supervisor

SERVICES = ("api", "relay", "notifier", "projector", "autoinvite")
DEMO_WORKSPACE = "demo"


def _secrets(data_dir: Path) -> dict[str, str]:
    """Generated once and kept in the data dir, so links and tokens survive a restart."""
    path = data_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    for name in ("PORCHLIGHT_SECRET_KEY", "STAFF_JWT_SECRET"):
        stored.setdefault(name, secrets.token_hex(32))
    _write_private(path, json.dumps(stored, indent=2))
    return {k: os.environ.get(k) or v for k, v in stored.items()}


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only at every moment: mkstemp creates the
    file 0600 whatever the umask, and the rename swaps it in whole."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _say(message: str) -> None:
    print(f"porchlight dev | {message}", flush=True)


class DevStack:
    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir.resolve()
        self.env: dict[str, str] = {}
        self.supervisor = Supervisor(say=_say)
        self.metrics_urls: dict[str, str] = {}
        self._postgres = self._tansu = self._sink = None
        self.outbox_url: str | None = None

    def claim(self) -> None:
        """Refuse to start next to another `porchlight dev` on the same data dir or port,
        before starting anything: a second stack would share the first one's PostgreSQL
        and reset its relay, then fail anyway on the API port."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.data_dir / "dev.lock", "w")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another porchlight dev is running with the data dir {self.data_dir}; stop it first, "
                "or give this one its own with PORCHLIGHT_DATA_DIR"
            ) from None
        if not embedded.port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is in use; choose another with --port")

    def start_infrastructure(self) -> None:
        env = {**os.environ, **_secrets(self.data_dir)}
        if not env.get("DATABASE_URL"):
            self._postgres = embedded.start_postgres(self.data_dir / "pg")
            env["DATABASE_URL"] = self._postgres.url
            _say(f"PostgreSQL (embedded, data in {self.data_dir / 'pg'})")
        if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            port = 9092 if embedded.port_is_free(9092) else embedded.free_port()
            self._tansu = embedded.start_tansu(port, log_file=self.data_dir / "tansu.log")
            env["KAFKA_BOOTSTRAP_SERVERS"] = self._tansu.bootstrap_servers
            _say(f"Kafka-protocol broker (Tansu, memory storage) on {self._tansu.bootstrap_servers}")
        if not env.get("SMTP_HOST"):
            from deploy.smtp_sink import SmtpSink

            smtp_port = 1025 if embedded.port_is_free(1025) else embedded.free_port()
            web_port = 8025 if embedded.port_is_free(8025) else embedded.free_port()
            self._sink = SmtpSink(self.data_dir / "outbox", smtp_port=smtp_port, web_port=web_port)
            self._sink.start()
            env["SMTP_HOST"], env["SMTP_PORT"] = "127.0.0.1", str(smtp_port)
            self.outbox_url = f"http://127.0.0.1:{web_port}/"
            _say(f"SMTP sink on 127.0.0.1:{smtp_port}, outbox at {self.outbox_url}")
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{self.port}")
        env["PORT"] = str(self.port)
        self.env = env

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "deploy.cli", "migrate"], env=self.env, check=True)

    def start_services(self) -> None:
        for name in SERVICES:
            args = [sys.executable, "-m", "deploy.cli", name]
            env = dict(self.env)
            if name == "api":
                env.pop("METRICS_PORT", None)  # the API serves /metrics on its own port
                self.metrics_urls[name] = f"http://127.0.0.1:{self.port}/metrics"
            else:
                # Each background process serves its own series; a restart keeps the address.
                metrics_port = embedded.free_port()
                env["METRICS_PORT"] = str(metrics_port)
                self.metrics_urls[name] = f"http://127.0.0.1:{metrics_port}/metrics"
            first_args = args
            if name == "relay" and self._tansu is not None:
                # The embedded broker keeps nothing across restarts, so what the relay sent
                # last time may never have reached the notifier or projector. Re-publish the
                # log; their ledgers skip what they already handled. A relay restarted after a
                # crash meets the same broker, so it goes on from its stored position.
                first_args = [*args, "--from-beginning"]
            self.supervisor.start(name, first_args, env, restart_args=args)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_children()
            try:
                last = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
                if last.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"not ready after {timeout}s: {last.text if last is not None else 'API not answering'}")

    def check_children(self) -> None:
        """Before the stack is ready, a child that exits is a setup problem: stop and say which."""
        exited = self.supervisor.first_exit()
        if exited:
            raise RuntimeError(exited)

    def seed_demo(self) -> str:
        """A demo workspace on the Pro plan and an owner token for it, for the README walk-through.
        The workspace is created once: a restart must not undo a person's renaming or recolouring."""
        from services.common.staff_auth import make_staff_token

        token = make_staff_token(self.env["STAFF_JWT_SECRET"], sub="demo-owner", ws=DEMO_WORKSPACE, role="owner", ttl_seconds=30 * 24 * 3600)
        url = f"http://127.0.0.1:{self.port}/v1/workspaces/{DEMO_WORKSPACE}"
        auth = {"Authorization": f"Bearer {token}"}
        existing = httpx.get(url, headers=auth, timeout=10)
        if existing.status_code == 404:
            httpx.put(
                url, headers=auth, timeout=10,
                json={"name": "Demo Travel Co", "plan": "pro", "portal_enabled": True,
                      "branding": {"sender_name": "Demo Travel Co", "brand_color": "#0B7A75"}},
            ).raise_for_status()
        else:
            existing.raise_for_status()
        _write_private(self.data_dir / "staff-token", token + "\n")
        return token

    def addresses(self, token: str) -> dict[str, str]:
        """What another terminal needs, as `dev.env` variables (`source .porchlight/dev.env`)."""
        return {
            "BASE_URL": f"http://127.0.0.1:{self.port}",
            "OUTBOX_URL": (self.outbox_url or "").rstrip("/"),
            "STAFF_TOKEN": token,
            "DATABASE_URL": self.env["DATABASE_URL"],
            "KAFKA_BOOTSTRAP_SERVERS": self.env["KAFKA_BOOTSTRAP_SERVERS"],
            **{f"METRICS_{name.upper()}": url for name, url in self.metrics_urls.items()},
        }

    def write_dev_env(self, token: str) -> None:
        lines = (f"{name}={shlex.quote(value)}" for name, value in self.addresses(token).items())
        _write_private(self.data_dir / "dev.env", "\n".join(lines) + "\n")

    def banner(self, token: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        if self._postgres:
            database = f"{self.env['DATABASE_URL']}  (embedded)"
        else:
            database = _without_password(self.env["DATABASE_URL"])
        if self._tansu:
            broker = f"{self.env['KAFKA_BOOTSTRAP_SERVERS']}  (embedded, memory only: empty after a restart)"
        else:
            broker = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        metrics = "\n".join(f"               {name:<10} {url}" for name, url in self.metrics_urls.items())
        return (
            f"\n  API          {base}  (docs {base}/docs)\n"
            f"  Outbox       {self.outbox_url or 'SMTP_HOST=' + self.env['SMTP_HOST']}\n"
            f"  PostgreSQL   {database}\n"
            f"  Kafka        {broker}\n"
            f"  Metrics\n{metrics}\n"
            f"  Workspace    {DEMO_WORKSPACE} (created on the Pro plan, portal on; your changes are kept)\n"
            f"  Staff token  {token}\n"
            f"               (all of this is in {self.data_dir / 'dev.env'})\n\n"
            "  Ctrl-C stops everything; data stays in the data dir.\n"
        )

    def stop(self) -> None:
        self.supervisor.stop()
        if self._sink:
            self._sink.stop()
        if self._tansu:
            self._tansu.stop()
        if self._postgres:
            self._postgres.stop()


def run_dev(port: int, data_dir: Path) -> int:
    started = time.monotonic()
    stack = DevStack(port, data_dir)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.claim()
        stack.start_infrastructure()
        stack.migrate()
        stack.start_services()
        stack.wait_ready()
        token = stack.seed_demo()
        stack.write_dev_env(token)
        _say(f"ready in {time.monotonic() - started:.1f}s")
        print(stack.banner(token), flush=True)
        while not stopping:
            stack.supervisor.check()  # restarts a crashed process; the others keep serving
            time.sleep(0.2)
        return 0
    except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        _say(f"failed: {exc}")
        return 1
    finally:
        _say("stopping")
        stack.stop()
        _say("stopped")
