"""Support staff: who may use the back office."""

from __future__ import annotations

from portal.services import audit
from portal.services.identity import find_by_email, normalise_email
from portal.tables import Identity, Profile


async def grant(raw_email: str) -> bool:
    """Make the ID staff; create it (unverified, no password) if missing. True if created."""
    email = normalise_email(raw_email)
    identity = await find_by_email(email)
    created = identity is None
    if created:
        identity = (
            await Identity.insert(Identity(email=email, is_staff=True)).returning(Identity.id)
        )[0]
        await Profile.insert(Profile(identity=identity["id"]))
    else:
        await Identity.update({Identity.is_staff: True}).where(Identity.id == identity["id"])
    await audit.record("staff:identity:grant", identity_id=identity["id"], via="cli")
    return created
