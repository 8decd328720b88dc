"""The app behind a real uvicorn server in the test's own event loop (the database pool lives
there): real sockets, uvicorn's own access log and proxy-header handling, no lifespan (the
suite's engine fixture owns the pool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn


@asynccontextmanager
async def served(app, **options) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 with uvicorn ``options``; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # a failed start raises here
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
