"""Demo data for ``portal demo`` and ``portal serve --demo``: idempotent, safe to load twice."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.db import ENGINE
from portal.security.passwords import hash_password
from portal.security.tokens import new_hex_id
from portal.services import catalogue
from portal.tables import Account, Company, CompanyAccess, Identity, Membership, Profile

#: Shown in the README; only ever used against the demo data.
DEMO_PASSWORD = "spokojny kot pije zimne mleko"  # noqa: S105

PEOPLE = [
    ("anna.nowak@example.com", "Anna", "Nowak"),
    ("piotr.zielinski@example.com", "Piotr", "Zieliński"),
    ("ewa.kowalczyk@example.com", "Ewa", "Kowalczyk"),
]

ACCOUNTS = [
    {
        "name": "Nowak i Wspólnicy sp. z o.o.",
        "nip": "5260250274",
        "is_accounting_office": True,
        "street": "ul. Marszałkowska 10",
        "postal_code": "00-590",
        "city": "Warszawa",
        "companies": [("Piekarnia Pod Lipą", "7740001454"), ("Auto-Serwis Kowalski", "")],
        "members": [
            ("anna.nowak@example.com", "owner"),
            ("piotr.zielinski@example.com", "admin"),
            ("ewa.kowalczyk@example.com", "member"),
        ],
    },
    {
        "name": "Zielony Ogród s.c.",
        "nip": "9512355210",
        "is_accounting_office": False,
        "street": "ul. Długa 5",
        "postal_code": "31-147",
        "city": "Kraków",
        "companies": [],
        "members": [("piotr.zielinski@example.com", "owner"), ("anna.nowak@example.com", "member")],
    },
]


async def load() -> dict[str, str]:
    """Create the demo people, accounts, companies and catalogue; return email → password."""
    await catalogue.seed()
    password_hash = await hash_password(DEMO_PASSWORD)
    ids = {}
    async with ENGINE.transaction():
        for email, first, last in PEOPLE:
            row = await Identity.select(Identity.id).where(Identity.email == email).first()
            if row is None:
                row = (
                    await Identity.insert(
                        Identity(
                            email=email,
                            password_hash=password_hash,
                            email_verified_at=datetime.now(UTC),
                        )
                    ).returning(Identity.id)
                )[0]
                await Profile.insert(Profile(identity=row["id"], first_name=first, last_name=last))
            ids[email] = row["id"]
        for spec in ACCOUNTS:
            if await Account.exists().where(Account.name == spec["name"]):
                continue
            account_id = (
                await Account.insert(
                    Account(
                        public_id=new_hex_id(12),
                        name=spec["name"],
                        nip=spec["nip"],
                        is_accounting_office=spec["is_accounting_office"],
                        street=spec["street"],
                        postal_code=spec["postal_code"],
                        city=spec["city"],
                        country="PL",
                    )
                ).returning(Account.id)
            )[0]["id"]
            companies = [(spec["name"], spec["nip"], True)] + [
                (name, nip, False) for name, nip in spec["companies"]
            ]
            company_ids = []
            for name, nip, is_main in companies:
                company_ids.append(
                    (
                        await Company.insert(
                            Company(
                                account=account_id,
                                key=new_hex_id(16),
                                name=name,
                                nip=nip,
                                is_main=is_main,
                            )
                        ).returning(Company.id)
                    )[0]["id"]
                )
            for email, role in spec["members"]:
                membership_id = (
                    await Membership.insert(
                        Membership(
                            account=account_id,
                            identity=ids[email],
                            role=role,
                        )
                    ).returning(Membership.id)
                )[0]["id"]
                if role == "member":
                    await CompanyAccess.insert(
                        CompanyAccess(
                            membership=membership_id, company=company_ids[0], level="view"
                        )
                    )
    return {email: DEMO_PASSWORD for email, _, _ in PEOPLE}
