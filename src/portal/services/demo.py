"""Demo data for ``portal demo`` and ``portal serve --demo``: idempotent, safe to load twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portal.db import ENGINE
from portal.security.passwords import hash_password
from portal.security.tokens import new_hex_id
from portal.services import catalogue
from portal.tables import (
    Account,
    Application,
    BillingProfile,
    Company,
    CompanyAccess,
    Delegation,
    DelegationAssignment,
    DelegationCompany,
    Identity,
    Membership,
    Order,
    OrderItem,
    Profile,
    RecentApplication,
    Subscription,
    Ticket,
    TicketMessage,
)

#: Shown in the README; only ever used against the demo data.
DEMO_PASSWORD = "spokojny kot pije zimne mleko"  # noqa: S105

PEOPLE = [
    ("anna.nowak@example.com", "Anna", "Nowak"),
    ("piotr.zielinski@example.com", "Piotr", "Zieliński"),
    ("ewa.kowalczyk@example.com", "Ewa", "Kowalczyk"),
    ("jan.klient@example.com", "Jan", "Klient"),
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
    # The accounting office's clients (Nowak i Wspólnicy keeps their books): one delegation
    # active, one asked for and waiting, one ended (OFFICE_CLIENTS).
    *[
        {"name": name, "nip": nip, "is_accounting_office": False, "street": street,
         "postal_code": postal_code, "city": city, "companies": companies,
         "members": [("jan.klient@example.com", "owner")]}
        for name, nip, street, postal_code, city, companies in (
            ("Kwiaciarnia Róża sp. z o.o.", "7740001454", "ul. Kwiatowa 2", "00-001",
             "Warszawa", [("Kwiaciarnia Róża — sklep internetowy", "")]),
            ("Stolarnia Dąb s.c.", "1234563218", "ul. Leśna 7", "31-100", "Kraków", []),
            ("Hurtownia Len sp. j.", "9512355210", "ul. Lniana 4", "90-001", "Łódź", []),
        )
    ],
]

#: The office's delegations: client, state, ceiling, and who of the office works on it.
OFFICE = "Nowak i Wspólnicy sp. z o.o."
OFFICE_CLIENTS = [
    ("Kwiaciarnia Róża sp. z o.o.", "approved", "edit", [("ewa.kowalczyk@example.com", "edit")]),
    ("Stolarnia Dąb s.c.", "pending", "manage", []),
    ("Hurtownia Len sp. j.", "ended", "view", []),
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
        await _customer_panel(ids, password_hash)
        await _office_clients(ids)
    return {email: DEMO_PASSWORD for email, _, _ in [*PEOPLE, STAFF]}


async def _office_clients(ids: dict) -> None:
    """The accounting office's three client delegations (each once)."""
    office = await Account.select(Account.id, Account.public_id).where(
        Account.name == OFFICE).first()
    now = datetime.now(UTC)
    for name, state, level, people in OFFICE_CLIENTS:
        client = await Account.select(Account.id, Account.public_id).where(
            Account.name == name).first()
        if office is None or client is None or await Delegation.exists().where(
                (Delegation.office == office["id"]) & (Delegation.client == client["id"])):
            continue
        delegation = (await Delegation.insert(Delegation(
            office=office["id"], client=client["id"], asked_for=client["public_id"],
            state="approved" if state == "ended" else state, level=level,
            requested_by=ids["anna.nowak@example.com"],
            decided_by=ids["jan.klient@example.com"] if state != "pending" else None,
            decided_at=now - timedelta(days=30) if state != "pending" else None,
        )).returning(Delegation.id))[0]["id"]
        for company in await Company.select(Company.id).where(Company.account == client["id"]):
            await DelegationCompany.insert(DelegationCompany(
                delegation=delegation, company=company["id"], level=level))
            for email, assigned in people:
                membership = await Membership.select(Membership.id).where(
                    (Membership.account == office["id"])
                    & (Membership.identity == ids[email])).first()
                await DelegationAssignment.insert(DelegationAssignment(
                    delegation=delegation, membership=membership["id"],
                    company=company["id"], level=assigned))
        if state == "ended":  # ended after its approval (the assignment trigger wants approved)
            await Delegation.update({Delegation.state: "ended", Delegation.ended_at: now,
                                     Delegation.ended_by: ids["jan.klient@example.com"]}).where(
                Delegation.id == delegation)


#: A support staff member for trying the back office (/staff).
STAFF = ("wsparcie@example.com", "Wiktor", "Wsparcie")

#: Each demo account's products: (application slug, state, start and end in days from today).
PRODUCTS = {
    "Nowak i Wspólnicy sp. z o.o.": [
        ("e-faktury", "active", -200, 165),
        ("e-biuro", "active", -200, 165),
        ("e-deklaracje", "trial", -10, 19),
        ("e-place", "expired", -90, -61),
    ],
    "Zielony Ogród s.c.": [("e-faktury", "trial", -3, 26)],
}

#: Each demo account's orders: (number suffix, status, days ago, [(slug, description, qty,
#: unit price)]).
ORDERS = {
    "Nowak i Wspólnicy sp. z o.o.": [
        ("1", "completed", 200, [
            ("e-faktury", "e-Faktury — licencja na 12 miesięcy", 1, "1188.00"),
            ("e-biuro", "e-Biuro — licencja na 12 miesięcy, do 20 klientów", 1, "2388.00"),
        ]),
        ("2", "paid", 45, [("e-biuro", "e-Biuro — 10 dodatkowych klientów", 1, "590.00")]),
        ("3", "new", 2, [("e-dokumenty", "e-Dokumenty — archiwum 50 GB", 2, "149.00")]),
        ("4", "cancelled", 120, [("e-place", "e-Płace — do 25 pracowników", 1, "990.00")]),
    ],
    "Zielony Ogród s.c.": [
        ("1", "new", 1, [("sklep", "Szkolenie: KSeF w praktyce", 2, "199.00")]),
    ],
}

#: Applications each demo account's first person opened recently, newest first.
RECENT = {"Nowak i Wspólnicy sp. z o.o.": ["e-faktury", "e-biuro", "centrum-pomocy"]}

TICKET = {
    "account": "Nowak i Wspólnicy sp. z o.o.",
    "author": "anna.nowak@example.com",
    "subject": "Jak wysłać fakturę do KSeF?",
    "category": "technical",
    "question": "Dzień dobry, gdzie w e-Fakturach wysyła się fakturę do KSeF? Nie widzę tej opcji.",
    "answer": "Dzień dobry, po wystawieniu faktury wybierz „Wyślij do KSeF” w menu Więcej. "
              "Opcja pojawia się, gdy w ustawieniach firmy jest włączona integracja z KSeF.",
}


async def _customer_panel(ids: dict, password_hash: str) -> None:
    """Products, orders, billing data and a support ticket for the demo accounts, and a staff
    member who answered it. Each part is added only where it is missing."""
    email, first, last = STAFF
    staff = await Identity.select(Identity.id).where(Identity.email == email).first()
    if staff is None:
        staff = (await Identity.insert(Identity(
            email=email, password_hash=password_hash, email_verified_at=datetime.now(UTC),
            is_staff=True)).returning(Identity.id))[0]
        await Profile.insert(Profile(identity=staff["id"], first_name=first, last_name=last))
    apps = {row["slug"]: row["id"] for row in await Application.select(
        Application.slug, Application.id)}
    today = datetime.now(UTC).date()
    for spec in ACCOUNTS:
        account = await Account.select(Account.id, Account.public_id).where(
            Account.name == spec["name"]).first()
        if account is None:
            continue
        for slug, state, start, end in PRODUCTS.get(spec["name"], []):
            await Subscription.insert(Subscription(
                account=account["id"], application=apps[slug],
                state="trial" if state == "expired" else state,
                starts_on=today + timedelta(days=start), ends_on=today + timedelta(days=end),
            )).on_conflict(target=(Subscription.account, Subscription.application),
                           action="DO NOTHING")
        for suffix, status, days_ago, items in ORDERS.get(spec["name"], []):
            total = sum(Decimal(price) * qty for _, _, qty, price in items)
            created = await Order.insert(Order(
                account=account["id"], number=f"ZAM/{account['public_id']}/{suffix}",
                status=status, total=total, currency="PLN",
                created_at=datetime.now(UTC) - timedelta(days=days_ago),
            )).on_conflict(target=Order.number, action="DO NOTHING").returning(Order.id)
            for slug, description, qty, price in items if created else []:
                await OrderItem.insert(OrderItem(
                    order=created[0]["id"], application=apps.get(slug), description=description,
                    quantity=qty, unit_price=Decimal(price)))
        await BillingProfile.insert(BillingProfile(
            account=account["id"], name=spec["name"], nip=spec["nip"], street=spec["street"],
            postal_code=spec["postal_code"], city=spec["city"], country="PL",
            email="faktury@" + spec["name"].split()[0].lower().replace("ó", "o") + ".example.com",
        )).on_conflict(target=BillingProfile.account, action="DO NOTHING")
        for minutes, slug in enumerate(RECENT.get(spec["name"], [])):
            await RecentApplication.insert(RecentApplication(
                identity=ids[spec["members"][0][0]], account=account["id"],
                application=apps[slug], used_at=datetime.now(UTC) - timedelta(minutes=minutes),
            )).on_conflict(target=(RecentApplication.identity, RecentApplication.account,
                                   RecentApplication.application), action="DO NOTHING")
        if spec["name"] == TICKET["account"] and not await Ticket.exists().where(
                (Ticket.account == account["id"]) & (Ticket.subject == TICKET["subject"])):
            ticket = (await Ticket.insert(Ticket(
                account=account["id"], identity=ids[TICKET["author"]], subject=TICKET["subject"],
                category=TICKET["category"], status="answered", updated_at=datetime.now(UTC),
            )).returning(Ticket.id))[0]["id"]
            await TicketMessage.insert(
                TicketMessage(ticket=ticket, author=ids[TICKET["author"]], from_staff=False,
                              body=TICKET["question"]),
                TicketMessage(ticket=ticket, author=staff["id"], from_staff=True,
                              body=TICKET["answer"],
                              created_at=datetime.now(UTC) + timedelta(seconds=1)),
            )
