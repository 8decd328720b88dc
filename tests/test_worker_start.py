"""A worker is ready before its first request (issue 20): app_from_env's start-up compiles
every template, warms the User-Agent parser and freezes what start-up made, so that neither a
first render nor a full garbage collection over the whole heap lands on a request."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, gc, json
from portal.app import app_from_env
from portal.services import identity

app = app_from_env()
environment = app.template_engine.engine

async def main():
    async with app.lifespan():
        print(json.dumps({
            "templates": len(environment.list_templates()),
            "compiled": len(environment.cache),
            "frozen": gc.get_freeze_count(),
            "devices_parsed": identity.describe_device.cache_info().currsize,
        }))

asyncio.run(main())
"""


def test_start_up_compiles_every_template_and_freezes_the_heap(database_url: str, tmp_path):
    env = {"PORTAL_DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path),
           "PORTAL_SECRET_KEY": "test-secret", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**env, **_python_path()},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["templates"] > 50
    assert figures["compiled"] >= figures["templates"]
    assert figures["frozen"] > 100_000  # the modules, routes and templates
    assert figures["devices_parsed"] == 1  # the parser's patterns were compiled by one


def _python_path() -> dict[str, str]:
    return {"PYTHONPATH": ":".join(path for path in sys.path if path)}
