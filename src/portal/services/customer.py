"""The customer panel: the account's orders (with their items) and its billing data.

Orders are written by the shop and the back-office systems (here: ``portal demo``); the panel
reads them. Billing data ("Dane do faktury") is one row per account: until someone saves it, the
account's own name, NIP and address are shown and used. Its NIP follows the account rules
(company_data: a Polish NIP with its checksum; another country's tax id is optional). Owners
and admins change it; every change is an audit event naming the fields that changed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portal.db import ENGINE
from portal.security.permissions import Permission
from portal.services import audit, company_data, tenancy
from portal.services.errors import DomainError, InvalidInput
from portal.services.identity import normalise_email
from portal.services.scope import Client, Scope
from portal.tables import Account, BillingProfile, Order, OrderItem

#: Order statuses in their usual sequence (labels: partials/catalogue_labels.html).
ORDER_STATUSES = ("new", "paid", "completed", "cancelled")

#: The VAT rate of the vendor's software and services (Polish standard rate, per cent). Order
#: totals and prices are stored net; VAT and gross are worked out from them, rounded to grosze.
VAT_RATE = Decimal(23)


def with_vat(net: Decimal) -> dict[str, Decimal]:
    """Net, VAT (at VAT_RATE, rounded half up to 0.01) and gross of a net amount."""
    net = Decimal(net)
    vat = (net * VAT_RATE / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {"net": net, "vat": vat, "gross": net + vat, "vat_rate": VAT_RATE}


#: The billing form's fields: the account's address fields plus the mail invoices go to.
BILLING_FIELDS = (*company_data.FIELDS, "email")


class BillingNotAllowed(DomainError):
    message = "Dane do faktury mogą zmieniać właściciele i administratorzy konta."


def parse_status(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in ORDER_STATUSES else ""


_ORDERS = """
SELECT o.id, o.number, o.status, o.total, o.currency, o.created_at,
       count(i.id) AS item_count
FROM customer_order o LEFT JOIN order_item i ON i."order" = o.id
WHERE o.account = {} AND ({} = '' OR o.status = {})
GROUP BY o.id
ORDER BY o.created_at DESC, o.number DESC
LIMIT {}
"""

#: The list shows this many newest orders; older ones are still reachable by their link.
ORDERS_SHOWN = 200


async def orders(scope: Scope, status: object = None) -> list[dict[str, Any]]:
    """The account's orders, newest first, with how many items each has (one query)."""
    wanted = parse_status(status)
    rows = await tenancy.raw(Order, scope, _ORDERS, wanted, wanted, ORDERS_SHOWN)
    return [{**row, **with_vat(row["total"])} for row in rows]


async def order(scope: Scope, order_id: object) -> dict[str, Any]:
    """One order of the current account with its items (NotFound for any other id)."""
    row = await tenancy.get(Order, scope, order_id)
    items = await (
        OrderItem.select(
            OrderItem.id, OrderItem.description, OrderItem.quantity, OrderItem.unit_price,
            OrderItem.application.name.as_alias("application_name"),
        )
        .where(OrderItem.order == row["id"])
        .order_by(OrderItem.created_at)
        .order_by(OrderItem.id)
    )
    for item in items:
        item["value"] = Decimal(item["quantity"]) * item["unit_price"]
    return {**row, **with_vat(row["total"]), "items": items}


async def billing(scope: Scope) -> dict[str, Any]:
    """The billing data as stored, or the account's own data while nothing is saved yet
    (``saved`` says which)."""
    row = await tenancy.select(BillingProfile, scope).first()
    if row is not None:
        return {**row, "saved": True}
    account = await Account.select(
        Account.name, Account.nip, Account.street, Account.postal_code, Account.city,
        Account.country,
    ).where(Account.id == tenancy.account_id(scope)).first()
    return {**(account or {}), "email": "", "saved": False}


def form_values(row: dict[str, Any]) -> dict[str, Any]:
    return {field: row.get(field) or "" for field in BILLING_FIELDS}


def validate(values: dict[str, str]) -> dict[str, str]:
    """An invoice needs a name and, in Poland, a valid NIP; the mail address is optional."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    try:
        clean.update(company_data.clean(values, nip_required=True))
    except InvalidInput as error:
        errors.update(error.errors)
    email = (values.get("email") or "").strip()
    clean["email"] = ""
    if email:
        try:
            clean["email"] = normalise_email(email)
        except InvalidInput as error:
            errors.update(error.errors)
    if errors:
        raise InvalidInput(errors)
    return clean


async def save_billing(scope: Scope, values: dict[str, str], client: Client) -> dict[str, Any]:
    """Store the account's billing data (owners and admins); one row per account, made on the
    first save. The audit event names the fields that changed, not their values."""
    if not scope.can(Permission.BILLING_EDIT):
        raise BillingNotAllowed()
    clean = validate(values)
    account_id = tenancy.account_id(scope)
    async with ENGINE.transaction():
        before = await billing(scope)
        await BillingProfile.insert(BillingProfile(account=account_id, **clean)).on_conflict(
            target=BillingProfile.account, action="DO UPDATE",
            values=[getattr(BillingProfile, field) for field in BILLING_FIELDS],
        )
        changed = sorted(f for f in BILLING_FIELDS if (before.get(f) or "") != clean[f])
        await audit.record(
            "account:billing:update", client=client, identity_id=scope.identity_id,
            account_id=account_id, changed=",".join(changed),
        )
    return {**clean, "saved": True}
