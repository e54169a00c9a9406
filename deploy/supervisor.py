"""Keeps `porchlight dev`'s child processes running: one that crashes is started again.

A crash is logged with the process's name and exit status and restarted after a delay that
doubles with each quick crash in a row (up to a cap), so a process that dies at once does
not spin. After many quick crashes in a row the supervisor gives up on that one process,
says so loudly, and keeps the others serving. `stop()` ends every child and cancels every
pending restart, so shutting down never races with a restart.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    args: list[str]
    restart_args: list[str]  # what a restart runs (the relay re-publishes the log only at first start)
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    crashes_in_a_row: int = 0
    restart_at: float | None = None
    given_up: bool = False


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass
class Supervisor:
    say: Callable[[str], None]
    first_delay: float = 1.0
    max_delay: float = 30.0
    # A crash this soon after a start counts toward giving up; a longer run resets the count.
    quick_crash_seconds: float = 60.0
    give_up_after: int = 8
    clock: Callable[[], float] = time.monotonic
    children: dict[str, Child] = field(default_factory=dict)
    stopped: bool = False

    def start(self, name: str, args: list[str], env: dict[str, str], restart_args: list[str] | None = None) -> None:
        child = Child(name, args, restart_args or args, env)
        self.children[name] = child
        self._spawn(child, child.args)

    def _spawn(self, child: Child, args: list[str]) -> None:
        # Its own session: Ctrl-C reaches the launcher only, which stops the children in order.
        child.process = subprocess.Popen(args, env=child.env, start_new_session=True)
        child.started_at = self.clock()
        child.restart_at = None

    def first_exit(self) -> str | None:
        """Before the stack is ready, a child that exits is a setup problem: name it, don't restart."""
        for child in self.children.values():
            if child.process is not None and child.process.poll() is not None:
                return f"{child.name} exited ({describe_exit(child.process.returncode)})"
        return None

    def check(self) -> None:
        """Notice crashed children and start those whose delay has passed; call it often."""
        if self.stopped:
            return
        now = self.clock()
        for child in self.children.values():
            if child.given_up:
                continue
            if child.restart_at is None and child.process is not None and child.process.poll() is not None:
                self._crashed(child, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child, child.restart_args)
                self.say(f"{child.name} restarted (pid {child.process.pid})")

    def _crashed(self, child: Child, now: float) -> None:
        quick = now - child.started_at < self.quick_crash_seconds
        child.crashes_in_a_row = child.crashes_in_a_row + 1 if quick else 1
        status = describe_exit(child.process.returncode)
        if child.crashes_in_a_row >= self.give_up_after:
            child.given_up = True
            child.process = None
            bar = "!" * 72
            self.say(
                f"{bar}\n  GIVING UP on {child.name}: it crashed {child.crashes_in_a_row} times in a row "
                f"(last: {status}).\n  The other processes keep serving; read {child.name}'s log above, "
                f"fix the cause and restart porchlight dev.\n{bar}"
            )
            return
        delay = min(self.first_delay * 2 ** (child.crashes_in_a_row - 1), self.max_delay)
        child.restart_at = now + delay
        self.say(f"{child.name} crashed ({status}); restarting in {delay:g}s (crash {child.crashes_in_a_row} in a row)")

    def pids(self) -> dict[str, int]:
        return {name: c.process.pid for name, c in self.children.items() if c.process is not None}

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel pending restarts, then SIGTERM every running child and wait (SIGKILL after `timeout`)."""
        self.stopped = True
        for child in self.children.values():
            child.restart_at = None
        running = [c for c in self.children.values() if c.process is not None and c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        for child in running:
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in time; killing it")
                child.process.kill()
                child.process.wait()
