"""`porchlight`: one entry point, a thin subcommand per process.

Production runs one process per subcommand (api, relay, notifier, projector), each
configured by the environment variables of API.md; `dev` runs them all on one machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from deploy.audit_cli import audit_app

app = typer.Typer(help="Porchlight: invitations and access for customer portals.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _settings(cls):
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        # The variable and the rule only: pydantic's own message repeats the input, which
        # for a too-short secret is the secret itself.
        problems = [
            f"  {str(e['loc'][0]).upper() if e['loc'] else cls.__name__}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        typer.secho("Configuration error:\n" + "\n".join(problems), fg="red", err=True)
        raise typer.Exit(2) from None


def _logging(settings, process: str) -> None:
    from services.common.logging import configure_logging
    from services.common.metrics import OWNERS, serve_if_configured, serve_only

    configure_logging(settings.log_level, settings.log_format, process)
    if process not in OWNERS:
        return  # a one-off command (migrate, replay, audit): no metrics to serve, none to drop
    serve_only(process)
    if process != "api":  # the API serves /metrics itself
        serve_if_configured(settings.metrics_port, settings.metrics_host)
    from services.common.runtime import tune_gc_after_start

    tune_gc_after_start()  # everything imported so far lives as long as the process (runtime.py)


def _run_until_signal(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main` until SIGINT or SIGTERM, then cancel it so it can close what it opened."""

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(runner())


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 8000)")] = None,
    workers: Annotated[int, typer.Option(help="Processes; each has its own pools and group committer")] = 1,
) -> None:
    """Serve the staff, portal and query HTTP API."""
    import uvicorn

    from services.common.settings import ApiSettings
    from services.invite_service.api.edge import server_options  # forwarded headers, header size

    settings = _settings(ApiSettings)
    settings.host = host or settings.host
    settings.port = port or settings.port
    _logging(settings, "api")
    if workers > 1:
        # Worker processes build their own app from the environment (uvicorn imports the factory).
        os.environ.update(HOST=settings.host, PORT=str(settings.port))
        uvicorn.run("deploy.api_app:create_api_from_env", factory=True, workers=workers,
                    host=settings.host, port=settings.port, log_config=None, access_log=False,
                    **server_options(settings))
    else:
        from deploy.api_app import create_api

        uvicorn.run(create_api(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
                    **server_options(settings))


@app.command()
def relay(
    from_beginning: Annotated[
        bool, typer.Option(help="Re-publish the whole log (after the broker lost its topics); consumers dedupe")
    ] = False,
) -> None:
    """Publish the event store's notification log to Kafka."""
    from services.common.settings import RelaySettings
    from services.invite_service.relay import run

    settings = _settings(RelaySettings)
    _logging(settings, "relay")
    _run_until_signal(lambda: run(settings, from_beginning))


@app.command()
def notifier() -> None:
    """Send the emails (and SMS) that access events call for."""
    from services.common.settings import NotifierSettings
    from services.notifier.main import run

    settings = _settings(NotifierSettings)
    _logging(settings, "notifier")
    _run_until_signal(lambda: run(settings))


@app.command()
def projector() -> None:
    """Build the read models ops query."""
    from projections.main import run
    from services.common.settings import ProjectorSettings
    from services.invite_service.stored_envelopes import event_store_reader

    settings = _settings(ProjectorSettings)
    _logging(settings, "projector")
    _run_until_signal(lambda: run(settings, event_store_reader))


@app.command()
def autoinvite() -> None:
    """Turn the first invoice or proposal share of each trip (`trips.shares.v1`) into an invite."""
    from services.autoinvite.main import run
    from services.common.settings import AutoinviteSettings

    settings = _settings(AutoinviteSettings)
    _logging(settings, "autoinvite")
    _run_until_signal(lambda: run(settings))


@app.command("publish-share")
def publish_share(
    workspace: Annotated[str, typer.Option(help="Workspace slug")],
    trip: Annotated[str, typer.Option(help="The trip's id")],
    traveler: Annotated[list[str], typer.Option(help="'Name <email>', an email or a name; repeat for each "
                                                     "traveler, in the trip's order")] = [],  # noqa: B006
    kind: Annotated[str, typer.Option(help="invoice or proposal")] = "invoice",
    primary: Annotated[bool, typer.Option(help="The first --traveler is the primary traveler")] = False,
    shared_by: Annotated[str | None, typer.Option(help="Who shared it (a staff id)")] = None,
) -> None:
    """Publish a share event to `trips.shares.v1`, as an upstream trip service would (to try auto-invite)."""
    from deploy.publish_share import ShareProducerSettings, parse_traveler, publish

    settings = _settings(ShareProducerSettings)
    travelers = [parse_traveler(text, primary=primary and index == 0) for index, text in enumerate(traveler)]
    try:
        share = asyncio.run(publish(settings, workspace, trip, kind, travelers, shared_by))
    except ValueError as exc:
        typer.secho(f"publish-share: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(share.model_dump_json())


@app.command()
def migrate() -> None:
    """Create or update the database schema and the Kafka topics (idempotent)."""
    from deploy.migrate import migrate as run_migrate
    from services.common.settings import CommonSettings

    settings = _settings(CommonSettings)
    _logging(settings, "migrate")
    from contracts import topics

    wanted = list(dict.fromkeys([*topics.ALL, settings.access_topic, settings.deliveries_topic, settings.dlq_topic,
                                 settings.audit_topic]))
    asyncio.run(run_migrate(settings.database_url, settings.kafka_bootstrap_servers, wanted))
    typer.echo("migrated")


@app.command()
def replay(
    page_size: Annotated[int, typer.Option(min=1, help="Events per page (one transaction each)")] = 2000,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (events/s, ETA)")] = True,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Worker processes that decode and fold the log (default: one per core, at most four)")] = None,
) -> None:
    """Rebuild every read model from the event store and swap it in; the API keeps answering."""
    from deploy.replay import ReplayBusy, ReplayWorkerFailed, UnknownReadModel, main
    from services.common.settings import ProjectorSettings

    settings = _settings(ProjectorSettings)
    _logging(settings, "replay")
    try:
        result = asyncio.run(main(settings.database_url, page_size=page_size, show_progress=progress,
                                  **({"workers": workers} if workers else {})))
    except (ReplayBusy, UnknownReadModel, ReplayWorkerFailed) as exc:
        typer.secho(f"replay: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"replayed {result.events} events up to position {result.position} in {result.seconds:.1f} s; "
               f"swapped in {', '.join(result.tables)}")


@app.command()
def docs(out: Annotated[Path, typer.Option(help="Where to write the documents")] = Path("docs")) -> None:
    """Write the OpenAPI, AsyncAPI and JSON Schema documents generated from the code."""
    from deploy.docs import write_all

    for path in write_all(out):
        typer.echo(f"wrote {path}")


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    data_dir: Annotated[Path, typer.Option(envvar="PORCHLIGHT_DATA_DIR", help="Embedded data")] = Path(".porchlight"),
) -> None:
    """Run everything on this machine: embedded PostgreSQL and broker, SMTP sink, all services."""
    from deploy.dev import run_dev

    raise typer.Exit(run_dev(port=port, data_dir=data_dir))


if __name__ == "__main__":
    app()
