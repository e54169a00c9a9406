"""`porchlight dev` from nothing, the README walk-through against it, Ctrl-C, a restart that
keeps the data and a person's settings, a crashed process coming back, and each process's
metrics."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from deploy import embedded
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_DEFAULTS = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SMTP_HOST", "SMTP_PORT", "PORCHLIGHT_SECRET_KEY", "STAFF_JWT_SECRET")


class DevProcess:
    """`porchlight dev` as a person starts it, with its output collected for assertions."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_DEFAULTS}
        env["PORCHLIGHT_DATA_DIR"] = str(data_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "dev", "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Ctrl-C stops everything" in line:  # the banner's last line: all of it has been read
                self.ready.set()
        self.ready.set()  # exited: let the waiter look at the output

    def wait_ready(self, timeout: float = 90) -> float:
        assert self.ready.wait(timeout), "porchlight dev did not become ready:\n" + self.output
        match = re.search(r"ready in ([\d.]+)s", self.output)
        assert match, "porchlight dev stopped before it was ready:\n" + self.output
        return float(match.group(1))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(60)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def child_pid(self, service: str) -> int | None:
        """The pid of the launcher's child running `porchlight <service>`, read from /proc."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                ppid = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("PPid:"))
            except (OSError, StopIteration):
                continue  # gone meanwhile
            if int(ppid.split()[1]) == self.proc.pid and cmdline[1:4] == [b"-m", b"deploy.cli", service.encode()]:
                return int(entry.name)
        return None


def dev_env(data_dir: Path) -> dict[str, str]:
    """The variables of dev.env, as `source` sets them."""
    return dict(line.split("=", 1) for line in shlex.split((data_dir / "dev.env").read_text()))


def test_dev_runs_the_walkthrough_stops_cleanly_and_keeps_data_and_settings(tmp_path):
    data_dir = tmp_path / "data"
    port = embedded.free_port()
    dev = DevProcess(data_dir, port)
    try:
        seconds = dev.wait_ready()
        print(f"porchlight dev ready in {seconds:.1f}s")
        assert f"http://127.0.0.1:{port}" in dev.output and "Staff token" in dev.output
        walk = subprocess.run(
            ["bash", str(ROOT / "deploy" / "walkthrough.sh")],
            env={**os.environ, "PORCHLIGHT_DATA_DIR": str(data_dir)}, capture_output=True, text=True, timeout=60,
        )
        assert walk.returncode == 0, walk.stderr
        out = walk.stdout
        assert '"status":"pending"' in out and "GET link: 200" in out
        assert '"status":"active"' in out and "That link is no longer valid." in out
        email = re.search(r'"email":"([^"]+)"', out.splitlines()[-1]).group(1)
        settings = dev_env(data_dir)
        outbox = httpx.get(settings["OUTBOX_URL"] + "/")
        assert email in outbox.text

        # Where everything is, in the banner and dev.env: the broker and each process's metrics too.
        assert settings["KAFKA_BOOTSTRAP_SERVERS"] in dev.output and "memory only" in dev.output
        for service in ("API", "RELAY", "NOTIFIER", "PROJECTOR"):
            assert settings[f"METRICS_{service}"] in dev.output
        assert settings["DATABASE_URL"].startswith("postgresql://")

        # A person renames the demo workspace and changes its colour.
        staff = {"Authorization": f"Bearer {settings['STAFF_TOKEN']}"}
        renamed = {"name": "Lima Charters", "branding": {"brand_color": "#AA3300"}}
        httpx.put(f"{settings['BASE_URL']}/v1/workspaces/demo", json=renamed, headers=staff).raise_for_status()

        # A second one on the same data dir refuses at once, and leaves the first one running.
        second = DevProcess(data_dir, embedded.free_port())
        assert second.proc.wait(30) == 1 and second.ready.wait(10)  # exited, and its output read to the end
        assert "another porchlight dev is running" in second.output
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    finally:
        code = dev.interrupt()
    assert code == 0, dev.output
    assert "porchlight dev | stopped" in dev.output

    # Restart on the same data dir: the same secrets, and the account is still there.
    secrets_before = (data_dir / "secrets.json").read_text()
    again = DevProcess(data_dir, port)
    try:
        again.wait_ready()
        settings = dev_env(data_dir)
        # The restart kept the person's settings rather than seeding the demo again.
        workspace = httpx.get(f"{settings['BASE_URL']}/v1/workspaces/demo", headers={"Authorization": f"Bearer {settings['STAFF_TOKEN']}"}).json()
        assert workspace["name"] == "Lima Charters" and workspace["branding"]["brand_color"] == "#AA3300"
        assert workspace["plan"] == "pro"
        response = httpx.get(
            f"{settings['BASE_URL']}/v1/workspaces/demo/accounts",
            params={"email": email}, headers={"Authorization": f"Bearer {settings['STAFF_TOKEN']}"},
        )
        assert response.status_code == 200
        assert [(i["email"], i["status"]) for i in response.json()["items"]] == [(email, "active")]
        assert (data_dir / "secrets.json").read_text() == secrets_before  # links sent before still work
        # The memory broker came back empty, so the relay re-published the log from the start;
        # the notifier saw the old invitation again and, by its ledger, sent nothing.
        wait_until(lambda: _counted(settings["METRICS_NOTIFIER"], "porchlight_delivery_repeats_total"),
                   timeout=30, what="the notifier to skip the re-published invite")
        assert len(_emails_to(settings, email)) == 1
        outbox = httpx.get(settings["OUTBOX_URL"] + "/api/messages", params={"to": email}).json()["messages"]
        assert len(outbox) == 1
    finally:
        assert again.interrupt() == 0, again.output


def test_dev_refuses_a_port_in_use_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = DevProcess(tmp_path / "data", port)
        assert dev.proc.wait(30) == 1 and dev.ready.wait(10)
    assert f"port {port} is in use" in dev.output
    assert not (tmp_path / "data" / "pg").exists(), "nothing may start before the checks"


@pytest.fixture(scope="module")
def running_dev(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("dev") / "data"
    dev = DevProcess(data_dir, embedded.free_port())
    try:
        dev.wait_ready()
        yield dev, dev_env(data_dir)
    finally:
        assert dev.interrupt() == 0, dev.output


def _invite(settings: dict[str, str]) -> str:
    email = f"kim.{secrets.token_hex(4)}@example.com"
    response = httpx.post(
        f"{settings['BASE_URL']}/v1/workspaces/demo/invitations",
        json={"email": email, "name": "Kim Park", "role": "customer"},
        headers={"Authorization": f"Bearer {settings['STAFF_TOKEN']}"},
    )
    assert response.status_code == 201, response.text
    return email


def _emails_to(settings: dict[str, str], email: str) -> list:
    return httpx.get(settings["OUTBOX_URL"] + "/api/messages", params={"to": email}).json()["messages"]


def test_a_killed_relay_and_notifier_come_back_and_the_api_keeps_serving(running_dev):
    dev, settings = running_dev
    killed = {service: dev.child_pid(service) for service in ("relay", "notifier")}
    assert all(killed.values()), killed
    for pid in killed.values():
        os.kill(pid, signal.SIGKILL)
    assert httpx.get(f"{settings['BASE_URL']}/healthz").status_code == 200  # the API did not go down with them

    def restarted():
        pids = {service: dev.child_pid(service) for service in killed}
        return all(pid not in (None, killed[service]) for service, pid in pids.items())

    wait_until(restarted, timeout=30, what="the relay and the notifier to be started again")
    for service in killed:
        assert f"{service} crashed (killed by SIGKILL); restarting in" in dev.output
    wait_until(lambda: httpx.get(f"{settings['BASE_URL']}/readyz").status_code == 200, timeout=30, what="/readyz")

    # An invite made afterwards is relayed and mailed by the new processes.
    email = _invite(settings)
    wait_until(lambda: _emails_to(settings, email), timeout=30, what=f"the email to {email}")
    assert dev.proc.poll() is None


def _counted(url: str, series: str) -> bool:
    """The series has counted at least one, on the process's metrics endpoint."""
    text = httpx.get(url).text
    return any(line.startswith(series) and float(line.split()[-1]) >= 1 for line in text.splitlines())


def test_each_process_serves_its_own_metrics(running_dev):
    dev, settings = running_dev
    email = _invite(settings)
    wait_until(lambda: _emails_to(settings, email), timeout=30, what=f"the email to {email}")

    api = httpx.get(settings["METRICS_API"]).text
    assert "porchlight_invites_total" in api
    for foreign in ("porchlight_relay_", "porchlight_deliveries_", "porchlight_projected_"):
        assert foreign not in api

    wait_until(lambda: _counted(settings["METRICS_RELAY"], "porchlight_relay_published_total"), what="relay metrics")
    wait_until(lambda: _counted(settings["METRICS_NOTIFIER"], "porchlight_deliveries_total"), what="notifier metrics")
    wait_until(lambda: _counted(settings["METRICS_PROJECTOR"], "porchlight_projected_total"), what="projector metrics")
    relay = httpx.get(settings["METRICS_RELAY"]).text
    assert "porchlight_invites_total" not in relay and "porchlight_deliveries_" not in relay
