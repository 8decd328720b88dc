"""The person's profile: names, phone and language. The email is not here: it never changes."""

from __future__ import annotations

import re
from typing import Any

from portal.db import ENGINE
from portal.services import audit
from portal.services.errors import InvalidInput
from portal.services.scope import Client, Scope
from portal.tables import Profile

FIELDS = ("first_name", "last_name", "phone", "language")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{6,25}$")


async def get(scope: Scope) -> dict[str, Any]:
    row = (
        await Profile.select(*[getattr(Profile, f) for f in FIELDS])
        .where(Profile.identity == scope.identity_id)
        .first()
    )
    return row or {field: "" for field in FIELDS}


def validate(values: dict[str, str]) -> dict[str, str]:
    clean = {field: (values.get(field) or "").strip() for field in FIELDS}
    errors = {}
    for field, label in (("first_name", "Imię"), ("last_name", "Nazwisko")):
        if len(clean[field]) > 100:
            errors[field] = f"{label}: najwyżej 100 znaków."
        elif any(ord(ch) < 32 for ch in clean[field]):
            errors[field] = f"{label}: niedozwolone znaki."
    if clean["phone"] and not _PHONE.match(clean["phone"]):
        errors["phone"] = "Podaj numer telefonu, np. +48 600 100 200."
    if clean["language"] not in ("", "pl", "en"):
        errors["language"] = "Wybierz język z listy."
    if errors:
        raise InvalidInput(errors)
    return clean


async def update(scope: Scope, values: dict[str, str], client: Client) -> dict[str, str]:
    clean = validate(values)
    async with ENGINE.transaction():
        updated = (
            await Profile.update({getattr(Profile, f): clean[f] for f in FIELDS})
            .where(Profile.identity == scope.identity_id)
            .returning(Profile.id)
        )
        if not updated:
            await Profile.insert(Profile(identity=scope.identity_id, **clean))
        await audit.record("identity:profile:update", client=client, identity_id=scope.identity_id)
    return clean


async def set_language(scope: Scope, language: str, client: Client) -> None:
    """The footer's language switch, signed in: only the profile's language changes."""
    if language not in ("pl", "en"):
        raise InvalidInput({"language": "Wybierz język z listy."})
    async with ENGINE.transaction():
        updated = (
            await Profile.update({Profile.language: language})
            .where(Profile.identity == scope.identity_id)
            .returning(Profile.id)
        )
        if not updated:
            await Profile.insert(Profile(identity=scope.identity_id, language=language))
        await audit.record("identity:profile:update", client=client, identity_id=scope.identity_id,
                           fields="language")
