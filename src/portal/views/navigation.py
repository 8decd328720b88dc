"""The left navigation of DESIGN.md, in its order. Labels are Polish source strings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str | None = None
    children: tuple[NavEntry, ...] = field(default=())

    def contains(self, path: str) -> bool:
        if self.path is not None and _under(path, self.path):
            return True
        return any(child.contains(path) for child in self.children)


def _under(path: str, entry_path: str) -> bool:
    if entry_path == "/":
        return path == "/"
    return path == entry_path or path.startswith(entry_path + "/")


NAVIGATION: tuple[NavEntry, ...] = (
    NavEntry("Strona główna", "/"),
    NavEntry("Aplikacje i usługi", "/apps"),
    NavEntry("Centrum wsparcia", "/support"),
    NavEntry(
        "Panel klienta",
        children=(
            NavEntry("Zamówienia", "/orders"),
            NavEntry("Moje produkty", "/products"),
            NavEntry("Dane do faktury", "/billing"),
        ),
    ),
    NavEntry("Konto", "/account"),
    NavEntry("Firmy", "/companies"),
    NavEntry("Użytkownicy", "/users"),
    NavEntry("Klucze API", "/api-keys"),
)


def flat() -> list[NavEntry]:
    """Every entry with a path, in navigation order."""
    out: list[NavEntry] = []
    for entry in NAVIGATION:
        if entry.path:
            out.append(entry)
        out.extend(entry.children)
    return out
