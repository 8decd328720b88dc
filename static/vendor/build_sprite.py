"""Rebuild static/vendor/lucide-sprite.svg from the pinned lucide-static package (npm).

    cd /tmp && npm pack lucide-static@1.62.0 && tar xzf lucide-static-1.62.0.tgz
    python static/vendor/build_sprite.py /tmp/package

Only the icons in ICONS go into the sprite (one <symbol id="i-NAME"> each); MANIFEST.json gets
the package version, the tarball's and the sprite's sha256 and each source icon's sha256.
Add an icon here, rebuild, and reference it as ui.icon("NAME").
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

VERSION = "1.62.0"
TARBALL_SHA256 = "386f9080c440d6f5049cefe3456ae8357f7a0c7f76e59670cd1cb83bc7050a44"
ICONS = sorted({
    "app-window", "arrow-right", "book-open", "briefcase", "building", "building-2",
    "calculator", "check", "chevron-down", "circle-check", "circle-help", "clock", "copy",
    "credit-card", "external-link", "file-check", "file-text", "filter", "folder",
    "graduation-cap", "history", "house", "inbox", "info", "key-round", "landmark",
    "languages", "layout-grid", "life-buoy", "lock", "log-out", "mail", "megaphone", "menu",
    "message-square", "monitor", "package", "plus", "receipt", "search", "shield-check",
    "shopping-cart", "smartphone", "sparkles", "store", "ticket", "triangle-alert", "user",
    "users", "wallet", "x",
})
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPRITE = HERE / "lucide-sprite.svg"


def symbol(name: str, text: str) -> str:
    body = re.search(r"<svg[^>]*>(.*)</svg>", text, re.S).group(1)
    body = " ".join(line.strip() for line in body.strip().splitlines())
    return (f'<symbol id="i-{name}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
            f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{body}</symbol>')


def main(package: Path) -> None:
    found = json.loads((package / "package.json").read_text())["version"]
    assert found == VERSION, f"package is {found}, pinned {VERSION}"
    sources = {name: (package / "icons" / f"{name}.svg").read_bytes() for name in ICONS}
    sprite = (f"<!-- lucide-static v{VERSION} (ISC licence), icons: {', '.join(ICONS)} -->\n"
              '<svg xmlns="http://www.w3.org/2000/svg">\n'
              + "\n".join(symbol(n, s.decode()) for n, s in sources.items()) + "\n</svg>\n")
    SPRITE.write_text(sprite)
    manifest_path = HERE / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["lucide-static"] = {
        "version": VERSION,
        "license": "ISC",
        "source": f"npm:lucide-static@{VERSION}/icons/*.svg -> lucide-sprite.svg",
        "tarball_sha256": TARBALL_SHA256,
        "file": str(SPRITE.relative_to(ROOT)),
        "sha256": hashlib.sha256(SPRITE.read_bytes()).hexdigest(),
        "icons": {n: hashlib.sha256(s).hexdigest() for n, s in sources.items()},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {SPRITE} ({len(ICONS)} icons)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
