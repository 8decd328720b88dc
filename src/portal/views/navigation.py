"""The left navigation of DESIGN.md, in its order. Labels are Polish source strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.security.permissions import Permission


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str | None = None
    children: tuple[NavEntry, ...] = field(default=())
    #: Shown only to some: "office" is an accounting office's owners and admins.
    only: str = ""
    #: the name of its icon in static/vendor/lucide-sprite.svg
    icon: str = ""
    #: The permission its screen's guard asks for (None: any signed-in person).
    permission: Permission | None = None

    def contains(self, path: str) -> bool:
        if self.path is not None and _under(path, self.path):
            return True
        return any(child.contains(path) for child in self.children)

    def here(self, path: str) -> bool:
        """This entry's own screen (not one of its children's)."""
        return self.path is not None and _under(path, self.path)

    def visible(self, scope) -> bool:
        if self.only == "office":
            # The link follows the service's rule for who may open the screen.
            from portal.services.offices import is_office

            return scope is not None and is_office(scope)
        # An accounting office's person in a client account never sees the client's people,
        # API keys or billing data (issue 15): no link to screens that would refuse them.
        # Members keep every link of DESIGN.md's navigation (the screen says what they may do).
        if self.permission and scope is not None and scope.delegation is not None:
            return scope.can(self.permission)
        return True


def _under(path: str, entry_path: str) -> bool:
    if entry_path == "/":
        return path == "/"
    return path == entry_path or path.startswith(entry_path + "/")


NAVIGATION: tuple[NavEntry, ...] = (
    NavEntry("Strona główna", "/", icon="house"),
    NavEntry("Aplikacje i usługi", "/apps", icon="layout-grid"),
    NavEntry("Centrum wsparcia", "/support", icon="life-buoy"),
    NavEntry(
        "Panel klienta",
        children=(
            NavEntry("Zamówienia", "/orders", icon="receipt"),
            NavEntry("Moje produkty", "/products", icon="package"),
            NavEntry("Dane do faktury", "/billing", icon="file-text",
                     permission=Permission.BILLING_VIEW),
        ),
    ),
    NavEntry("Konto", "/account", icon="building",
             children=(NavEntry("Klienci biura", "/office/clients", only="office",
                                icon="briefcase"),)),
    NavEntry("Firmy", "/companies", icon="building-2"),
    NavEntry("Użytkownicy", "/users", icon="users", permission=Permission.PEOPLE_VIEW),
    NavEntry("Klucze API", "/api-keys", icon="key-round", permission=Permission.API_KEY_MANAGE),
)


def flat() -> list[NavEntry]:
    """Every entry with a path, in navigation order."""
    out: list[NavEntry] = []
    for entry in NAVIGATION:
        if entry.path:
            out.append(entry)
        out.extend(entry.children)
    return out
