"""Pieces the whole-pipeline benchmarks share: CPU accounting of process trees from /proc, an
SMTP server in its own process that only notes who got mail and when, and a load generator
in its own process.

Times cross process boundaries as `time.monotonic()`, which on Linux is CLOCK_MONOTONIC, one
clock for every process on the machine: a request's start in the load generator and its
email's arrival in the SMTP process can be subtracted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_SPAWN = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited loop or threads


# --- CPU of process trees -------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its children it has reaped)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between the listing and the read
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ", whatever comm holds
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICKS_PER_SECOND


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """For each named root pid: user+system CPU of it and every live descendant, plus what the
    descendants that already exited used (counted in their parent's cutime/cstime once reaped,
    as PostgreSQL's postmaster reaps its backends). A snapshot; subtract two of them."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found:
                stats[int(entry.name)] = found
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid in stats:
                total += stats[pid][1]
                todo += children.get(pid, [])
        out[name] = total
    return out


def postmaster_pid(data_dir: Path) -> int | None:
    """PostgreSQL's main process, from the postmaster.pid file somewhere under its data dir."""
    for path in data_dir.rglob("postmaster.pid"):
        return int(path.read_text().split()[0])
    return None


# --- an SMTP server that notes recipients and times ---------------------------------------

def _smtp_recorder(port: int, log_path: str, ready) -> None:
    from aiosmtpd.controller import Controller

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - line buffered: each arrival is visible at once

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            now = time.monotonic()
            log.write("".join(f"{rcpt}\t{now}\n" for rcpt in envelope.rcpt_tos))
            return "250 OK"

    Controller(Handler(), hostname="127.0.0.1", port=port).start()
    ready.set()
    while True:  # until terminated
        time.sleep(3600)


class SmtpRecorder:
    """The SMTP server in its own process; `arrivals()` reads what it noted so far."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        log_path.write_text("")
        ready = _SPAWN.Event()
        self.process = _SPAWN.Process(target=_smtp_recorder, args=(port, str(log_path), ready), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP server did not start")
        self._offset = 0
        self.first: dict[str, float] = {}
        self.count: Counter[str] = Counter()

    def arrivals(self) -> dict[str, float]:
        """Recipient -> first arrival (monotonic seconds); also counts repeats in `count`."""
        with open(self.log_path) as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]  # a line being written is read next time
        self._offset += len(complete.encode())
        for line in complete.splitlines():
            rcpt, at = line.split("\t")
            self.count[rcpt] += 1
            self.first.setdefault(rcpt, float(at))
        return self.first

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# --- a load generator in its own process ----------------------------------------------------

@dataclass
class Load:
    base_url: str
    path: str
    token: str
    emails: list[str]
    clients: int = 64
    rate: float | None = None  # None: closed loop, `clients` at a time; else open loop at this rate


@dataclass
class LoadResult:
    started: dict[str, float] = field(default_factory=dict)  # email -> request start (monotonic)
    statuses: Counter[int] = field(default_factory=Counter)
    first_start: float = 0.0
    last_end: float = 0.0
    cpu_seconds: float = 0.0  # the generator's own


async def _drive(load: Load) -> LoadResult:
    import aiohttp

    result = LoadResult()
    headers = {"Authorization": f"Bearer {load.token}"}
    connector = aiohttp.TCPConnector(limit=load.clients)
    async with aiohttp.ClientSession(load.base_url, headers=headers, connector=connector) as http:

        async def invite(email: str, t0: float) -> None:
            result.started[email] = t0
            try:
                async with http.post(load.path, json={"email": email}) as r:
                    await r.read()
                    result.statuses[r.status] += 1
            except aiohttp.ClientError:
                result.statuses[0] += 1
            result.last_end = max(result.last_end, time.monotonic())

        result.first_start = time.monotonic()
        if load.rate is None:
            todo = iter(load.emails)

            async def client() -> None:
                for email in todo:
                    await invite(email, time.monotonic())

            await asyncio.gather(*(client() for _ in range(load.clients)))
        else:
            # Open loop: each request leaves at its time whatever the earlier ones are doing,
            # and its latency counts from that time (a slow answer cannot hide the delay).
            tasks = []
            for i, email in enumerate(load.emails):
                at = result.first_start + i / load.rate
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                tasks.append(asyncio.create_task(invite(email, at)))
            await asyncio.gather(*tasks)
    return result


def _load_process(load: Load, conn) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_drive(load))
    result.cpu_seconds = time.process_time()
    conn.send(result)
    conn.close()


def run_load(load: Load) -> LoadResult:
    """Drive `load` from its own process; blocks until every request has an answer."""
    receiver, sender = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=_load_process, args=(load, sender), daemon=True)
    process.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the load generator died (exit {process.exitcode})") from None
    process.join(10)
    return result


def run_in_process(target, *args):
    """Call `target(*args)` in a fresh process and return its result (a bare measurement's
    CPU is then its own, undisturbed by the harness)."""
    receiver, sender = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=_call_and_send, args=(target, args, sender), daemon=True)
    process.start()
    sender.close()
    result = receiver.recv()
    process.join(10)
    return result


def _call_and_send(target, args, conn) -> None:
    conn.send(target(*args))
    conn.close()


def wait_until(check, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


# --- bare costs, each run in its own process (run_in_process) --------------------------------

_TEXT = "Hello,\n\nYou have been invited to the customer portal. Open the link to accept:\n" + "x" * 600 + "\n"
_HTML = ("<html><body><table style=\"width:100%;font-family:sans-serif\"><tr><td style=\"padding:24px\">"
         + "<p style=\"color:#333\">You have been invited to the customer portal.</p>" * 20
         + "<a style=\"background:#0B7A75;color:#fff;padding:12px\" href=\"https://example.com/claim/x\">Accept</a>"
         "</td></tr></table></body></html>")


def bare_smtp(port: int, count: int) -> dict[str, float]:
    """CPU per message of building a two-part message with Python's `email` package and of
    aiosmtplib's send_message on one kept connection, to the same SMTP server."""
    from email.message import EmailMessage

    import aiosmtplib

    def build(i: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "Bench <portal@example.com>", f"bare{i}@example.com", "Invitation"
        msg.set_content(_TEXT)
        msg.add_alternative(_HTML, subtype="html")
        return msg

    async def main() -> dict[str, float]:
        t0 = time.process_time()
        messages = [build(i) for i in range(count)]
        built = time.process_time() - t0
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        t0 = time.process_time()
        for message in messages:
            await client.send_message(message)
        sent = time.process_time() - t0
        await client.quit()
        return {"build_ms": built / count * 1000, "send_ms": sent / count * 1000}

    return asyncio.run(main())


def bare_kafka(bootstrap: str, count: int, size: int = 700) -> dict[str, float]:
    """CPU per message of a batched aiokafka produce (acks=all, as the relay) and of a batched
    consume of the same messages, on a fresh one-partition topic."""
    import secrets

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from services.common.kafka import create_producer, ensure_topics

    async def main() -> dict[str, float]:
        topic = f"bench.bare.{secrets.token_hex(4)}"
        await ensure_topics(bootstrap, [topic], partitions=1)
        payload = b"x" * size
        producer = create_producer(bootstrap)
        await producer.start()
        t0 = time.process_time()
        for start in range(0, count, 1000):
            batch = [await producer.send(topic, payload, key=str(i).encode()) for i in range(start, min(count, start + 1000))]
            await asyncio.gather(*batch)
        produced = time.process_time() - t0
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)  # no group: no join wait
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        t0, got = time.process_time(), 0
        while got < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            got += sum(len(records) for records in batches.values())
        consumed = time.process_time() - t0
        await consumer.stop()
        return {"produce_ms": produced / count * 1000, "consume_ms": consumed / count * 1000}

    return asyncio.run(main())
