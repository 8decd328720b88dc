"""Vendored front-end files are exactly the pinned releases."""

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("manifest", ["static/vendor/MANIFEST.json", "e2e/vendor/MANIFEST.json"])
def test_vendored_files_match_their_pinned_hash(manifest):
    entries = json.loads((ROOT / manifest).read_text())
    assert entries
    for package, entry in entries.items():
        digest = hashlib.sha256((ROOT / entry["file"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], package
        assert entry["source"].endswith(entry["file"].rsplit("/", 1)[1])


def test_htmx_is_a_pinned_2_0_release():
    entry = json.loads((ROOT / "static/vendor/MANIFEST.json").read_text())["htmx.org"]
    assert entry["version"].startswith("2.0.")
    assert f'version:"{entry["version"]}"' in (ROOT / entry["file"]).read_text()
