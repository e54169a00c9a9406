"""The API behind a real uvicorn server on a free loopback port, for what only a server does:
reading forwarded headers, limiting header sizes, logging what escapes the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from deploy.embedded import free_port


@asynccontextmanager
async def live_server(app: Any, **options: Any) -> AsyncIterator[str]:
    """Serve `app` as `porchlight api` does (its lifespan too); yield the base URL. On exit the
    server shuts down and waits for its requests to finish, so everything they log is written."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None, access_log=False, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server from starting
                raise AssertionError("the server stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task
