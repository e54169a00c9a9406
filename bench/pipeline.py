"""The whole pipeline, request to email, with the CPU each process spends per invite.

    .venv/bin/python -m bench.pipeline [--invites 3000] [--latency-seconds 5] [--notifiers 1] [--json FILE]

Starts the system as `porchlight dev` does (deploy/dev.py: embedded PostgreSQL and Tansu
unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS name real ones, `porchlight migrate`, then
every service as its own child process, the demo workspace), with an SMTP server in its own
process that only notes recipients and arrival times, and a load generator in its own
process (64 aiohttp clients). Then, in one run:

  burst     --invites invites from 64 clients as fast as they are accepted: invites/s
            accepted; emails/s from the first request to the last email; seconds of backlog
            after the load ends; CPU ms per invite of each process tree (our processes, the
            broker, PostgreSQL; from /proc: utime+stime of the tree including reaped
            children), over the window from the first request until the last email and
            the last row in the status list
  latency   invite -> email p50/p99 at fixed open-loop rates (50/s and 200/s by default)
  bare      on the same servers, services stopped: one-row commits/s (64 connections), a
            bare aiosmtplib send loop's CPU per message (and building the message), a bare
            batched Kafka produce -> consume's CPU per message

Prints a table and writes the figures as JSON. Goals (issue 18): emails/s >= 230; CPU per
invite <= 4 ms for our processes together, <= 1 ms broker, <= 1.5 ms PostgreSQL; p99 <= 100 ms
at 50/s and <= 250 ms at 200/s. Everything shares the machine's cores, load and SMTP server
included, so run it on a quiet machine and compare figures within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench import _harness as h
from bench.infra import percentile
from bench.invite_throughput import raw_commits
from deploy import embedded
from deploy.dev import DEMO_WORKSPACE, DevStack

PHASES = ("burst", "latency", "bare")
GOALS = {"emails_per_s": 230, "ours_ms": 4.0, "broker_ms": 1.0, "postgresql_ms": 1.5, "p99_ms": {50: 100, 200: 250}}
PEERS = "peers (same machine, issue 18): Django+allauth 116 emails/s, 10.9 ms/invite; better-auth 94 emails/s, 11.3 ms/invite"


_T0 = time.monotonic()


def _say(message: str) -> None:
    print(f"pipeline | {time.monotonic() - _T0:6.1f}s  {message}", flush=True)


@contextmanager
def _output_to(path: Path):
    """Children started inside inherit this file as stdout/stderr: the services' logs go there,
    not over the report."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class Pipeline:
    def __init__(self, data_dir: Path, notifiers: int, projectors: int) -> None:
        self.data_dir = data_dir
        self.log = data_dir / "services.log"
        self.smtp = h.SmtpRecorder(embedded.free_port(), data_dir / "arrivals.tsv")
        os.environ.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(self.smtp.port))  # dev starts no sink then
        self.stack = DevStack(embedded.free_port(), data_dir / "dev")
        with _output_to(self.log):
            self.stack.claim()
            self.stack.start_infrastructure()
            self.stack.migrate()
            self.stack.start_services()
            # Scale-out: more consumer processes in the same groups, as more pods would be.
            for name, extra in (("notifier", notifiers - 1), ("projector", projectors - 1)):
                for k in range(2, 2 + extra):
                    env = {**self.stack.env, "METRICS_PORT": str(embedded.free_port())}
                    self.stack.supervisor.start(f"{name}-{k}", [sys.executable, "-m", "deploy.cli", name], env)
        self.stack.wait_ready(timeout=120)
        with _output_to(self.log):
            self.token = self.stack.seed_demo()
        self.base_url = f"http://127.0.0.1:{self.stack.port}"
        self.path = f"/v1/workspaces/{DEMO_WORKSPACE}/invitations"
        self.db = psycopg.connect(self.stack.env["DATABASE_URL"], autocommit=True)

    def roots(self) -> dict[str, int]:
        roots = dict(self.stack.supervisor.pids())
        if self.stack._tansu is not None:
            roots["broker"] = self.stack._tansu.process.pid
        if self.stack._postgres is not None:
            pid = h.postmaster_pid(self.stack._postgres.data_dir)
            if pid:
                roots["postgresql"] = pid
        roots["smtp server"] = self.smtp.process.pid
        return roots

    def check_children(self) -> None:
        exited = self.stack.supervisor.first_exit()
        if exited:
            raise RuntimeError(f"{exited}; see {self.log}")

    def listed(self, prefix: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM account_status WHERE workspace = %s AND email LIKE %s", (DEMO_WORKSPACE, prefix + "%")
        ).fetchone()[0]

    def settle(self, emails: list[str], prefix: str, timeout: float) -> float:
        """Wait for every email and every status-list row; returns the last email's arrival."""
        def all_mailed() -> bool:
            self.check_children()
            arrived = self.smtp.arrivals()
            return all(e in arrived for e in emails)

        h.wait_until(all_mailed, timeout, f"{len(emails)} emails")
        h.wait_until(lambda: self.listed(prefix) >= len(emails), timeout, f"{len(emails)} status-list rows", every=0.1)
        return max(self.smtp.first[e] for e in emails)

    def run_phase(self, prefix: str, count: int, clients: int, rate: float | None, timeout: float) -> dict:
        emails = [f"{prefix}{i}@example.com" for i in range(count)]
        roots = self.roots()
        before = h.tree_cpu_seconds(roots)
        load = h.run_load(h.Load(self.base_url, self.path, self.token, emails, clients, rate))
        accepted = [e for e in emails if e in load.started]
        if load.statuses.get(201, 0) != count:
            raise RuntimeError(f"{prefix}: not every invite was accepted: {dict(load.statuses)}")
        last_email = self.settle(accepted, prefix, timeout)
        after = h.tree_cpu_seconds(roots)
        latencies = [(self.smtp.first[e] - load.started[e]) * 1000 for e in emails]
        return {
            "invites": count,
            "window_seconds": last_email - load.first_start,
            "statuses": {str(k): v for k, v in load.statuses.items()},
            "load_seconds": load.last_end - load.first_start,
            "invites_per_s": count / (load.last_end - load.first_start),
            "emails_per_s": count / (last_email - load.first_start),
            "backlog_seconds": max(0.0, last_email - load.last_end),
            "cpu_ms_per_invite": {name: (after[name] - before[name]) / count * 1000 for name in roots},
            "load_generator_ms_per_invite": load.cpu_seconds / count * 1000,
            "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": max(latencies)},
            "sent_twice": sum(1 for e in emails if self.smtp.count[e] > 1),
        }

    def partition_holders(self) -> dict[str, int]:
        """Per consumer group, how many consumers hold partitions now (from each assignment the
        services logged): with --notifiers 2, two notifiers must share the access topic's
        partitions, or the second one measures nothing but its idle polling."""
        latest: dict[tuple[str, str], bool] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            found = _ASSIGNED.search(line)
            if found:
                latest[found["group"], found["member"]] = "TopicPartition(" in found["partitions"]
        holders: dict[str, int] = {}
        for (group, _), holds in latest.items():
            holders[group] = holders.get(group, 0) + holds
        return holders

    def idle(self, seconds: float) -> dict[str, float]:
        """CPU ms per second of each process with nothing to do: what polling and heartbeats cost."""
        roots = self.roots()
        before = h.tree_cpu_seconds(roots)
        time.sleep(seconds)
        after = h.tree_cpu_seconds(roots)
        return {name: (after[name] - before[name]) / seconds * 1000 for name in roots}

    def bare(self, seconds: float, messages: int) -> dict[str, float]:
        url, bootstrap = self.stack.env["DATABASE_URL"], self.stack.env["KAFKA_BOOTSTRAP_SERVERS"]
        roots = self.roots()
        out: dict[str, float] = {}

        before = h.tree_cpu_seconds(roots)
        started = time.monotonic()
        out["one_row_commits_per_s"] = asyncio.run(raw_commits(url, 64, seconds))
        commits = out["one_row_commits_per_s"] * (time.monotonic() - started)
        after = h.tree_cpu_seconds(roots)
        if "postgresql" in roots:
            out["postgresql_ms_per_commit"] = (after["postgresql"] - before["postgresql"]) / commits * 1000

        _say("bare: aiosmtplib send loop")
        before = h.tree_cpu_seconds(roots)
        smtp = h.run_in_process(h.bare_smtp, self.smtp.port, messages)
        after = h.tree_cpu_seconds(roots)
        out["email_build_ms"], out["smtp_send_ms"] = smtp["build_ms"], smtp["send_ms"]
        out["smtp_server_ms_per_message"] = (after["smtp server"] - before["smtp server"]) / messages * 1000

        kafka_messages = messages * 10
        _say("bare: Kafka produce -> consume")
        before = h.tree_cpu_seconds(roots)
        kafka = h.run_in_process(h.bare_kafka, bootstrap, kafka_messages)
        after = h.tree_cpu_seconds(roots)
        out["kafka_produce_ms"], out["kafka_consume_ms"] = kafka["produce_ms"], kafka["consume_ms"]
        if "broker" in roots:
            out["broker_ms_per_message"] = (after["broker"] - before["broker"]) / kafka_messages * 1000
        return out

    def stop_services(self) -> None:
        self.db.close()
        with _output_to(self.log):
            self.stack.supervisor.stop()

    def stop(self) -> None:
        with _output_to(self.log):
            self.stack.stop()
        self.smtp.stop()


_ASSIGNED = re.compile(r"Consumer (?P<member>\S+) assigned to partitions: \((?P<partitions>.*)\) group_id=(?P<group>\S+)")


def report(result: dict) -> None:
    config = result["config"]
    print(f"\n{config['notifiers']} notifier and {config['projectors']} projector process(es); "
          f"{config['cpus']} CPUs, shared with everything else running on the machine "
          f"(load average {config['load_average_at_start']:.1f} at the start, {config['load_average_at_end']:.1f} at the end)")
    holders = ", ".join(f"{group} {n}" for group, n in sorted(result.get("partition_holders", {}).items()))
    if holders:
        print(f"  consumers holding partitions    {holders}")
    if "burst" in result:
        report_burst(result)
    if result["latency"]:
        report_latency(result)
    if "bare" in result:
        report_bare(result)
    print(f"\n  {PEERS}")


def report_burst(result: dict) -> None:
    burst, config = result["burst"], result["config"]
    print(f"\n  burst: {config['invites']} invites from {config['clients']} clients (closed loop)")
    print(f"  invites accepted/s              {burst['invites_per_s']:8.0f}")
    print(f"  emails/s, first request -> last {burst['emails_per_s']:8.0f}    goal >= {GOALS['emails_per_s']}")
    print(f"  backlog after the load ended    {burst['backlog_seconds']:8.1f} s")
    print(f"  emails sent twice               {burst['sent_twice']:8d}")
    print(f"\n  CPU ms per invite over the {burst['window_seconds']:.1f} s from the first request to the last email"
          " and status-list row;\n  'idle' is the CPU with nothing to do (polling, heartbeats), 'less idle' takes"
          " that rate out of the window")
    print(f"  {'process':<16}{'ms/invite':>10}{'idle ms/s':>11}{'less idle':>11}   goal")
    cpu, idle, net = burst["cpu_ms_per_invite"], result["idle_ms_per_s"], burst["cpu_ms_per_invite_less_idle"]
    theirs = {"broker", "postgresql", "smtp server"}
    ours = [name for name in cpu if name not in theirs]

    def row(name: str, names: list[str], goal: str = "") -> None:
        print(f"  {name:<16}{sum(cpu[n] for n in names):>10.2f}{sum(idle.get(n, 0) for n in names):>11.1f}"
              f"{sum(net[n] for n in names):>11.2f}   {goal}".rstrip())

    for name in ours:
        row(name, [name])
    row("= ours", ours, f"<= {GOALS['ours_ms']}")
    for name, goal in (("broker", GOALS["broker_ms"]), ("postgresql", GOALS["postgresql_ms"]), ("smtp server", None)):
        if name in cpu:
            row(name, [name], f"<= {goal}" if goal else "(not ours)")
    print(f"  {'load generator':<16}{burst['load_generator_ms_per_invite']:>10.2f}{'':>22}   (not ours)")


def report_latency(result: dict) -> None:
    print("\n  invite -> email, open loop          n     p50     p99     max  ms   goal p99")
    for rate, phase in result["latency"].items():
        lat = phase["latency_ms"]
        goal = GOALS["p99_ms"].get(int(float(rate)))
        print(f"  at {float(rate):5.0f}/s {'':21}{phase['invites']:>5}{lat['p50']:>8.1f}{lat['p99']:>8.1f}{lat['max']:>8.1f}"
              f"       {'<= ' + str(goal) if goal else ''}")
    print("\n  CPU ms per invite over each open-loop phase (its window: first request to last email)")
    for rate, phase in result["latency"].items():
        cpu = phase["cpu_ms_per_invite"]
        print(f"  at {float(rate):5.0f}/s  " + "  ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()))


def report_bare(result: dict) -> None:
    bare = result["bare"]
    print("\n  bare costs, same run, same servers (services stopped)")
    print(f"  one-row commits/s, 64 connections        {bare['one_row_commits_per_s']:8.0f}"
          + (f"   (PostgreSQL {bare['postgresql_ms_per_commit']:.2f} ms CPU per commit)" if "postgresql_ms_per_commit" in bare else ""))
    print(f"  email package: build a two-part message  {bare['email_build_ms']:8.2f} ms CPU/message")
    print(f"  aiosmtplib send_message, kept connection {bare['smtp_send_ms']:8.2f} ms CPU/message"
          f"   (SMTP server {bare['smtp_server_ms_per_message']:.2f} ms)")
    print(f"  Kafka produce, batched                   {bare['kafka_produce_ms']:8.3f} ms CPU/message")
    print(f"  Kafka consume, batched                   {bare['kafka_consume_ms']:8.3f} ms CPU/message"
          + (f"   (broker {bare['broker_ms_per_message']:.3f} ms per message in and out)" if "broker_ms_per_message" in bare else ""))


def run(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="plpipe-"))
    data_dir.chmod(0o755)
    result: dict = {"config": {
        "invites": args.invites, "clients": args.clients, "rates": args.rates, "latency_seconds": args.latency_seconds,
        "notifiers": args.notifiers, "projectors": args.projectors, "cpus": os.cpu_count(),
        "log_level": os.environ.get("LOG_LEVEL", "INFO"), "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": os.getloadavg()[0],
    }}
    pipeline = None
    try:
        _say("starting the system as porchlight dev does")
        pipeline = Pipeline(data_dir, args.notifiers, args.projectors)
        _say(f"ready; services' logs in {pipeline.log}")
        # Warm-up: connections, pools and every consumer's first fetch, outside the figures.
        pipeline.run_phase("warm", 20, args.clients, None, args.settle_timeout)
        result["idle_ms_per_s"] = pipeline.idle(args.idle_seconds)
        if "burst" in args.phases:
            _say(f"burst of {args.invites} invites")
            burst = result["burst"] = pipeline.run_phase("burst", args.invites, args.clients, None, args.settle_timeout)
            result["partition_holders"] = pipeline.partition_holders()
            burst["cpu_ms_per_invite_less_idle"] = {
                name: ms - result["idle_ms_per_s"].get(name, 0.0) * burst["window_seconds"] / args.invites
                for name, ms in burst["cpu_ms_per_invite"].items()
            }
        result["latency"] = {}
        for rate in args.rates if "latency" in args.phases else ():
            _say(f"open loop at {rate:g}/s for {args.latency_seconds:g} s")
            # At most --invites, so a quick run stays quick however far the system is from the goal.
            count = max(1, min(args.invites, round(rate * args.latency_seconds)))
            result["latency"][str(rate)] = pipeline.run_phase(f"r{rate:g}-", count, args.clients, rate, args.settle_timeout)
        _say("stopping the services")
        pipeline.stop_services()
        if "bare" in args.phases:
            _say("bare costs: one-row commits")
            result["bare"] = pipeline.bare(args.bare_seconds, args.bare_messages)
        result["config"]["load_average_at_end"] = os.getloadavg()[0]
        result["config"]["seconds"] = time.monotonic() - _T0
        return result
    finally:
        if pipeline is not None:
            _say("stopping")
            pipeline.stop()
        if args.keep:
            _say(f"data and logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invites", type=int, default=3000, help="invites in the burst")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients of the burst")
    parser.add_argument("--rates", type=float, nargs="*", default=[50.0, 200.0], help="open-loop rates for latency")
    parser.add_argument("--latency-seconds", type=float, default=5.0,
                        help="seconds of load at each rate (at most --invites invites each)")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                        help="which phases to run (all by default; the report shows those that ran)")
    parser.add_argument("--notifiers", type=int, default=1, help="notifier processes in the group")
    parser.add_argument("--projectors", type=int, default=1, help="projector processes in the group")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="seconds to measure idle CPU")
    parser.add_argument("--bare-seconds", type=float, default=2.0, help="seconds of one-row commits")
    parser.add_argument("--bare-messages", type=int, default=300, help="SMTP messages (x10 Kafka messages) of the bare loops")
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="longest wait for a phase's emails")
    parser.add_argument("--json", type=Path, default=Path("pipeline-result.json"), help="where to write the figures")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the services' log")
    args = parser.parse_args()
    result = run(args)
    report(result)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n  figures written to {args.json}")


if __name__ == "__main__":
    main()
