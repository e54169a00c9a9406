"""`porchlight dev`'s supervisor with real child processes: a crashed child is restarted with a
doubling, capped delay; a child that keeps crashing is given up on loudly while the others
keep running; stopping cancels a pending restart. Time is a clock the test moves by hand."""

from __future__ import annotations

import os
import signal
import sys

from deploy.supervisor import Supervisor

CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]
SERVE = [sys.executable, "-c", "import time; time.sleep(600)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _supervisor(clock: Clock, lines: list[str], **kw) -> Supervisor:
    return Supervisor(say=lines.append, clock=clock, first_delay=1.0, max_delay=8.0, give_up_after=6, **kw)


def _crash_and_notice(sup: Supervisor, name: str) -> None:
    sup.children[name].process.wait(10)
    sup.check()


def test_a_killed_child_is_logged_by_name_and_status_and_restarted_after_the_delay():
    clock, lines = Clock(), []
    sup = _supervisor(clock, lines)
    sup.start("notifier", SERVE, env=dict(os.environ))
    try:
        first_pid = sup.pids()["notifier"]
        os.kill(first_pid, signal.SIGKILL)
        _crash_and_notice(sup, "notifier")
        assert lines[-1] == "notifier crashed (killed by SIGKILL); restarting in 1s (crash 1 in a row)"
        assert sup.pids()["notifier"] == first_pid  # not before the delay
        clock.now += 1.0
        sup.check()
        assert sup.pids()["notifier"] != first_pid and sup.children["notifier"].process.poll() is None
        assert lines[-1] == f"notifier restarted (pid {sup.pids()['notifier']})"
    finally:
        sup.stop()


def test_the_delay_doubles_to_a_cap_and_the_supervisor_gives_up_while_others_keep_serving():
    clock, lines = Clock(), []
    sup = _supervisor(clock, lines)
    sup.start("api", SERVE, env=dict(os.environ))
    sup.start("relay", CRASH, env=dict(os.environ))
    try:
        delays = []
        for _ in range(5):
            _crash_and_notice(sup, "relay")
            assert "relay crashed (exit status 3)" in lines[-1]
            delays.append(sup.children["relay"].restart_at - clock.now)
            clock.now = sup.children["relay"].restart_at
            sup.check()
        assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
        _crash_and_notice(sup, "relay")  # the sixth quick crash in a row
        assert "GIVING UP on relay: it crashed 6 times in a row (last: exit status 3)" in lines[-1]
        assert "The other processes keep serving" in lines[-1]
        clock.now += 3600
        sup.check()
        assert "relay" not in sup.pids() and "GIVING UP" in lines[-1]  # nothing more happened
        assert sup.children["api"].process.poll() is None
    finally:
        sup.stop()
    assert sup.children["api"].process.poll() is not None


def test_a_crash_after_a_long_run_starts_the_count_again():
    clock, lines = Clock(), []
    sup = _supervisor(clock, lines, quick_crash_seconds=60.0)
    sup.start("projector", CRASH, env=dict(os.environ))
    try:
        for _ in range(3):
            _crash_and_notice(sup, "projector")
            clock.now = sup.children["projector"].restart_at
            sup.check()
        assert "crash 3 in a row" in lines[-2]
        clock.now += 61  # this run lasted longer than a quick crash
        _crash_and_notice(sup, "projector")
        assert lines[-1] == "projector crashed (exit status 3); restarting in 1s (crash 1 in a row)"
    finally:
        sup.stop()


def test_stopping_cancels_a_pending_restart():
    clock, lines = Clock(), []
    sup = _supervisor(clock, lines)
    sup.start("notifier", SERVE, env=dict(os.environ))
    sup.start("api", SERVE, env=dict(os.environ))
    crashed = sup.children["notifier"].process
    os.kill(crashed.pid, signal.SIGKILL)
    _crash_and_notice(sup, "notifier")
    assert "restarting in 1s" in lines[-1]
    sup.stop()  # the shutdown arrives while the restart waits
    clock.now += 60
    sup.check()
    assert sup.children["notifier"].process is crashed  # no new process was started
    assert all(c.process.poll() is not None for c in sup.children.values())
