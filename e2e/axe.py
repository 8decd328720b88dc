"""axe-core in the page under test, without loosening the app's Content Security Policy.

The app sends ``script-src 'self'``, so ``page.add_script_tag(content=...)`` is blocked. The
vendored axe source is evaluated through Playwright's ``page.evaluate`` instead: that goes over
the DevTools protocol, which the page's CSP does not govern, so the page keeps its real policy
while axe checks it (``test_axe_helper_reports_violations_under_the_app_csp`` proves both).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE_PATH = Path(__file__).parent / "vendor" / "axe.min.js"

#: Impacts that fail a test. "moderate" and "minor" are reported by axe but do not fail.
BLOCKING = ("serious", "critical")

_RUN = """async (options) => {
  const results = await window.axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary })),
  }));
}"""


@cache
def axe_source() -> str:
    return AXE_PATH.read_text(encoding="utf-8")


async def inject(page: Page) -> None:
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    if not await page.evaluate("typeof window.axe === 'object'"):
        raise RuntimeError(f"axe-core did not load into {page.url}")


async def violations(page: Page, *, impacts: tuple[str, ...] = BLOCKING,
                     options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now, only those with one of ``impacts``."""
    await inject(page)
    found = await page.evaluate(_RUN, {"resultTypes": ["violations"], **(options or {})})
    return [violation for violation in found if violation["impact"] in impacts]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} "
                     f"<{violation['helpUrl']}>")
        for node in violation["nodes"]:
            lines.append(f"    {' > '.join(map(str, node['target']))}")
    return "\n".join(lines)


async def assert_no_serious_violations(page: Page) -> None:
    found = await violations(page)
    assert not found, f"axe-core found serious/critical violations on {page.url}:\n" + describe(
        found
    )
