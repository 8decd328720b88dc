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


def test_the_icon_sprite_holds_exactly_the_pinned_icons_and_every_icon_used():
    """lucide-static (npm), only the icons the templates use, each hashed as published."""
    import re

    entry = json.loads((ROOT / "static/vendor/MANIFEST.json").read_text())["lucide-static"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"]) and entry["license"] == "ISC"
    sprite = (ROOT / entry["file"]).read_text()
    assert f"lucide-static v{entry['version']}" in sprite
    symbols = set(re.findall(r'<symbol id="i-([a-z0-9-]+)"', sprite))
    assert symbols == set(entry["icons"])
    templates = ROOT / "src" / "portal"
    used = set()
    for path in [*templates.glob("templates/**/*.html"), *templates.glob("partials/*.html")]:
        used |= set(re.findall(r'icon(?:_name)?[=(]\s*"([a-z0-9-]+)"', path.read_text()))
    navigation = (templates / "views" / "navigation.py").read_text()
    used |= set(re.findall(r'icon="([a-z0-9-]+)"', navigation))
    assert used and used <= symbols, used - symbols
