"""Rules the database keeps for issue 8's rows, whatever a service does: a ticket names only a
company of its own account, a trial always ends, orders have known statuses and no negative
amounts, a catalogue slug has its shape."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from portal.services import catalogue
from portal.tables import Application, Order, OrderItem, Subscription, Ticket
from portal.testing import factories


async def test_a_ticket_never_names_a_company_of_another_account():
    mine = await factories.account(await factories.identity("a@example.com"), name="A")
    theirs = await factories.account(await factories.identity("b@example.com"), name="B")
    with pytest.raises(asyncpg.CheckViolationError, match="own account"):
        await Ticket.insert(Ticket(account=mine["id"], company=theirs["main_company_id"],
                                   subject="x", category="other", updated_at=datetime.now(UTC)))
    ticket = (await Ticket.insert(Ticket(account=mine["id"], company=mine["main_company_id"],
                                         subject="x", category="other",
                                         updated_at=datetime.now(UTC))
                                  ).returning(Ticket.id))[0]["id"]
    with pytest.raises(asyncpg.CheckViolationError):
        await Ticket.update({Ticket.company: theirs["main_company_id"]}).where(Ticket.id == ticket)
    with pytest.raises(asyncpg.CheckViolationError):
        await Ticket.update({Ticket.category: "nieznana"}).where(Ticket.id == ticket)
    with pytest.raises(asyncpg.CheckViolationError):
        await Ticket.update({Ticket.subject: "  "}).where(Ticket.id == ticket)


async def test_subscriptions_orders_and_slugs_keep_their_shape():
    await catalogue.seed()
    account = await factories.account(await factories.identity("c@example.com"))
    app_id = (await Application.select(Application.id).first())["id"]
    with pytest.raises(asyncpg.CheckViolationError):
        await Subscription.insert(Subscription(account=account["id"], application=app_id,
                                               state="trial", starts_on=date(2026, 1, 1),
                                               ends_on=None))
    with pytest.raises(asyncpg.CheckViolationError):
        await Subscription.insert(Subscription(account=account["id"], application=app_id,
                                               state="active", starts_on=date(2026, 2, 1),
                                               ends_on=date(2026, 1, 1)))
    with pytest.raises(asyncpg.CheckViolationError):
        await Order.insert(Order(account=account["id"], number="Z/1", status="zgubione"))
    order = (await Order.insert(Order(account=account["id"], number="Z/2")).returning(
        Order.id))[0]["id"]
    with pytest.raises(asyncpg.CheckViolationError):
        await OrderItem.insert(OrderItem(order=order, description="x", quantity=0))
    with pytest.raises(asyncpg.CheckViolationError):
        await Application.insert(Application(slug="Zła Nazwa", name="x"))
