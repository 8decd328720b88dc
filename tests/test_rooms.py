"""Rooms stay rooms (issue 17): the services import each other one way only, and the security
primitives (passwords, TOTP, tokens, permissions) import nothing from the rooms above them; the
request handling that needs the services lives in ``web/``."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "portal"


def imports_of(path: Path) -> set[str]:
    """Every portal module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("portal"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("portal"))
    return found


def graph(room: str) -> dict[str, set[str]]:
    modules = {f"portal.{room}.{p.stem}": p for p in (SRC / room).glob("*.py")
               if p.stem != "__init__"}
    return {name: {m for m in imports_of(path) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_the_people_and_invitation_rooms_point_one_way():
    edges = graph("services")
    circle = {"portal.services.accounts", "portal.services.invitations",
              "portal.services.people"}
    bad = [c for c in cycles(edges) if circle & set(c)]
    assert not bad, bad
    assert "portal.services.people" not in edges["portal.services.invitations"]
    assert "portal.services.invitations" not in edges["portal.services.accounts"]


def test_the_mfa_and_security_screens_point_one_way():
    edges = graph("views")
    assert "portal.views.mfa" not in edges["portal.views.security"]
    assert not [c for c in cycles(edges) if "portal.views.mfa" in c], cycles(edges)


ABOVE_THE_PRIMITIVES = ("portal.services", "portal.views", "portal.api", "portal.tables",
                        "portal.db", "portal.web")


def test_the_security_room_holds_only_primitives_that_import_nothing_from_the_rooms_above():
    files = sorted((SRC / "security").glob("*.py"))
    assert {p.stem for p in files} == {"__init__", "passwords", "totp", "tokens", "permissions"}
    for path in files:
        reached = {m for m in imports_of(path) if m.startswith(ABOVE_THE_PRIMITIVES)}
        assert not reached, (path.name, reached)


def test_the_request_handling_room_sits_above_the_services_and_below_the_views():
    reached = set().union(*(imports_of(p) for p in (SRC / "web").glob("*.py")))
    # It may use the services (the session middleware resolves a Scope) and the primitives...
    assert {"portal.services", "portal.security.permissions"} <= reached
    # ...but never the screens or the API that stand on it.
    assert not {m for m in reached if m.startswith(("portal.views", "portal.api"))}, reached
    # And nothing of the request handling is left behind in security/.
    users = {m for p in SRC.rglob("*.py") for m in imports_of(p)}
    assert not {m for m in users if m.startswith("portal.security.")
                and m.split(".")[2] not in {"passwords", "totp", "tokens", "permissions"}}


#: The people rooms (issue 17): the list and one person, membership changes, company access
#: levels. Changes build on the access room (an invitation's levels), never the other way.
PEOPLE_ROOMS = ("people", "membership_changes", "company_access")


def test_the_people_rooms_point_one_way_and_stay_separate():
    edges = graph("services")
    rooms = {f"portal.services.{name}" for name in PEOPLE_ROOMS}
    assert not [c for c in cycles(edges) if rooms & set(c)], cycles(edges)
    assert not edges["portal.services.people"] & rooms
    assert not edges["portal.services.company_access"] & rooms
    for shared in ("membership", "invitations", "accounts"):
        assert not edges[f"portal.services.{shared}"] & rooms, shared


#: A service room that grows past this holds more than one idea (people.py reached 755 lines
#: before it was split); split it along the domain rather than raising the number.
MAX_SERVICE_LINES = 700


def test_no_service_room_outgrows_one_idea():
    long = {path.name: n for path in (SRC / "services").glob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_SERVICE_LINES}
    assert not long, long
