"""/support: the four help sections; creating a ticket (page and fragment, field errors, nothing
made on error); the thread, replies and closing; who sees which ticket; tenant isolation on
every ticket route, as page and as fragment."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from portal.services import catalogue
from portal.tables import AuditEvent, OutboxEmail, Ticket, TicketMessage
from portal.testing import factories
from tests.conftest import field_error, last_mail
from tests.views.test_companies import HTMX, owner_signed_in
from tests.views.test_customer import routes_under

TICKET = {"subject": "Nie działa wysyłka do KSeF", "category": "technical", "company": "",
          "message": "Dzień dobry,\nwysyłka kończy się błędem 500."}


@pytest.fixture(autouse=True)
async def seeded() -> None:
    await catalogue.seed()


async def snapshot() -> tuple[list, list]:
    return (await Ticket.select().order_by(Ticket.id),
            await TicketMessage.select().order_by(TicketMessage.id))


async def test_the_support_centre_has_the_four_help_sections(client):
    await owner_signed_in(client)
    html = (await client.get("/support")).text
    headings = re.findall(r'<h3 id="(\w+)-title">([^<]+)</h3>', html)
    assert headings == [("docs", "Dokumentacja"), ("help", "Centrum pomocy"),
                        ("community", "Społeczność"), ("voice", "Głos klienta")]
    for slug in ("dokumentacja", "centrum-pomocy", "spolecznosc", "glos-klienta"):
        assert f'action="/apps/{slug}/open"' in html
    assert 'id="tickets"' in html and "Nie masz jeszcze zgłoszeń." in html


async def test_creating_a_ticket_with_a_company_and_following_it(client):
    _, account = await owner_signed_in(client)
    company = await factories.company(account["id"], name="Spółka Córka")
    created = await client.post_form("/support/tickets",
                                     {**TICKET, "company": str(company)})
    assert created.status_code == 303
    ticket = await Ticket.select().first()
    assert created.headers["location"] == f"/support/tickets/{ticket['id']}"
    assert (ticket["account"], ticket["company"], ticket["status"]) == (
        account["id"], company, "open")
    thread = await client.get(created.headers["location"])
    assert "Wysłano zgłoszenie." in thread.text and "Spółka Córka" in thread.text
    assert "wysyłka kończy się błędem 500." in thread.text
    assert "Oczekuje na odpowiedź" in thread.text
    mail = await last_mail("firmy@example.com")
    assert f"/support/tickets/{ticket['id']}" in mail["text_body"]
    assert await AuditEvent.exists().where(AuditEvent.tag == "support:ticket:create")
    listing = await client.get("/support?status=open", headers=HTMX)
    assert listing.text.lstrip().startswith('<div id="ticket-list">')
    assert TICKET["subject"] in listing.text
    assert TICKET["subject"] not in (await client.get("/support?status=closed")).text

    htmx = await client.post_form("/support/tickets", {**TICKET, "subject": "Drugie"}, htmx=True)
    assert htmx.status_code == 200 and htmx.headers["HX-Redirect"].startswith("/support/tickets/")


async def test_a_refused_ticket_keeps_the_values_and_makes_nothing(client):
    _, _mine = await owner_signed_in(client, "ja@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    for htmx in (False, True):
        response = await client.post_form("/support/tickets", {
            "subject": "   ", "category": "nieznana", "message": "\x01 ",
            "company": str(theirs["main_company_id"])}, htmx=htmx)
        assert response.status_code == 422
        assert field_error(response.text, "subject") == "Podaj temat zgłoszenia."
        assert field_error(response.text, "category") == "Wybierz kategorię z listy."
        assert field_error(response.text, "message") == "Napisz wiadomość."
        assert field_error(response.text, "company") == "Wybierz firmę z listy."
        assert "Obce Konto" not in response.text
    long = await client.post_form("/support/tickets", {**TICKET, "subject": "x" * 201,
                                                       "message": "y" * 10_001})
    assert long.status_code == 422
    assert field_error(long.text, "subject") and field_error(long.text, "message")
    fragment = await client.post_form("/support/tickets", {**TICKET, "subject": ""}, htmx=True)
    assert fragment.text.lstrip().startswith('<form id="ticket-form"')
    assert "wysyłka kończy się błędem 500." in fragment.text
    assert await Ticket.count() == 0 and await OutboxEmail.count() == 0


async def test_replying_and_closing(client):
    await owner_signed_in(client)
    await client.post_form("/support/tickets", TICKET)
    ticket_id = (await Ticket.select(Ticket.id).first())["id"]
    url = f"/support/tickets/{ticket_id}"
    reply = await client.post_form(url, {"message": "Jeszcze zrzut ekranu."}, htmx=True)
    assert reply.status_code == 200
    assert reply.text.lstrip().startswith('<div id="ticket-thread"')
    assert "Jeszcze zrzut ekranu." in reply.text and "Wysłano odpowiedź." in reply.text
    empty = await client.post_form(url, {"message": "  "})
    assert empty.status_code == 422 and field_error(empty.text, "message")
    closed = await client.post_form(url + "/close", {})
    assert closed.status_code == 303
    assert (await Ticket.select(Ticket.status).first())["status"] == "closed"
    again = await client.post_form(url + "/close", {})
    assert again.status_code == 422 and "już zamknięte" in again.text
    reopened = await client.post_form(url, {"message": "Problem wrócił."})
    assert reopened.status_code == 303
    assert (await Ticket.select(Ticket.status).first())["status"] == "open"
    assert await TicketMessage.count() == 3


async def test_members_see_their_own_tickets_and_admins_see_all(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto")
    for email, role in (("ala@example.com", "member"), ("ola@example.com", "member"),
                        ("admin@example.com", "admin")):
        await factories.membership(await factories.identity(email), account["id"], role)
    await client.sign_in("ala@example.com", factories.PASSWORD)
    await client.post_form("/support/tickets", {**TICKET, "subject": "Sprawa Ali"})
    alas = (await Ticket.select(Ticket.id).first())["id"]
    await client.post("/logout", headers={"x-csrftoken": await client.csrf()})

    await client.sign_in("ola@example.com", factories.PASSWORD)
    assert "Sprawa Ali" not in (await client.get("/support")).text
    before = await snapshot()
    for headers in ({}, HTMX):
        assert (await client.get(f"/support/tickets/{alas}", headers=headers)).status_code == 404
        assert (await client.post_form(f"/support/tickets/{alas}", {"message": "cudze"},
                                       headers=headers)).status_code == 404
        assert (await client.post_form(f"/support/tickets/{alas}/close", {},
                                       headers=headers)).status_code == 404
    assert await snapshot() == before
    await client.post("/logout", headers={"x-csrftoken": await client.csrf()})

    await client.sign_in("admin@example.com", factories.PASSWORD)
    listing = (await client.get("/support")).text
    assert "Sprawa Ali" in listing and "ala@example.com" in listing
    assert "widzisz wszystkie zgłoszenia" in listing
    assert (await client.get(f"/support/tickets/{alas}")).status_code == 200


async def test_every_ticket_route_with_an_id_from_another_account_is_404(client, app):
    await owner_signed_in(client, "ja@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    their_ticket = (await Ticket.insert(Ticket(
        account=theirs["id"], identity=stranger, subject="Tajne pytanie", category="other",
        status="open", updated_at=datetime.now(UTC))).returning(Ticket.id))[0]["id"]
    await TicketMessage.insert(TicketMessage(ticket=their_ticket, author=stranger,
                                             body="tajna treść"))
    before = await snapshot()
    audit_before = await AuditEvent.count()
    tried = set()
    for ticket_id in (their_ticket, uuid.uuid4(), "nie-uuid", "%00", "x" * 3000):
        for headers in ({}, HTMX):
            for method, path, call in (
                ("GET", "/support/tickets/{ticket_id:str}",
                 lambda t, h: client.get(f"/support/tickets/{t}", headers=h)),
                ("POST", "/support/tickets/{ticket_id:str}",
                 lambda t, h: client.post_form(f"/support/tickets/{t}", {"message": "x"},
                                               headers=h)),
                ("POST", "/support/tickets/{ticket_id:str}/close",
                 lambda t, h: client.post_form(f"/support/tickets/{t}/close", {}, headers=h)),
            ):
                response = await call(ticket_id, headers)
                expected = 400 if ticket_id == "%00" else 404  # a NUL is refused
                assert response.status_code == expected, (method, path, ticket_id, headers)
                assert "Tajne pytanie" not in response.text and "tajna" not in response.text
                tried.add((method, path))
    assert tried == routes_under(app, "/support/tickets/{")
    assert await snapshot() == before
    assert await AuditEvent.count() == audit_before
    for headers in ({}, HTMX):
        assert "Tajne pytanie" not in (await client.get("/support", headers=headers)).text


ODD = ["\x00", "a\x00b", "x" * 20_000, "😀" * 300, "<script>alert(1)</script>", "' OR 1=1 --",
       "\r\n\t", ""]


@pytest.mark.parametrize("value", ODD)
async def test_odd_input_never_breaks_a_support_form(client, value):
    await owner_signed_in(client)
    await client.post_form("/support/tickets", TICKET)
    ticket_id = (await Ticket.select(Ticket.id).first())["id"]
    for url, data in (
        ("/support/tickets", {"subject": value, "category": value, "company": value,
                              "message": value}),
        ("/support/tickets", {**TICKET, "subject": value or "x", "message": value or "x"}),
        (f"/support/tickets/{ticket_id}", {"message": value}),
        (f"/support/tickets/{ticket_id}/close", {"message": value}),
    ):
        for headers in ({}, HTMX):
            response = await client.post_form(url, data, headers=headers)
            assert response.status_code < 500, (url, value[:20], response.status_code)
    assert "<script>alert(1)</script>" not in (await client.get(
        f"/support/tickets/{ticket_id}")).text
