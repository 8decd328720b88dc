"""/staff: staff only; finding an ID (page and fragment); its card without secrets; resending
verification; deleting an ID on request (it can no longer sign in); answering tickets (the
person is mailed and sees the reply)."""

from __future__ import annotations

import uuid

import pytest
from litestar.routes import HTTPRoute

from portal.services import catalogue
from portal.tables import AuditEvent, Identity, OutboxEmail, Ticket
from portal.testing import factories
from tests.conftest import field_error, last_mail
from tests.views.test_companies import HTMX
from tests.views.test_support import TICKET

STAFF_EMAIL = "wsparcie@example.com"


@pytest.fixture(autouse=True)
async def seeded() -> None:
    await catalogue.seed()


async def staff_signed_in(client):
    staff_id = await factories.identity(STAFF_EMAIL, is_staff=True)
    await client.sign_in(STAFF_EMAIL, factories.PASSWORD)
    return staff_id


def staff_routes(app):
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/staff"):
            for handler in route.route_handlers:
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    yield method, route.path


async def test_people_who_are_not_staff_get_403_everywhere(client, app):
    someone = await factories.identity("klient@example.com")
    await factories.account(someone)
    await client.sign_in("klient@example.com", factories.PASSWORD)
    paths = list(staff_routes(app))
    assert ("POST", "/staff/identities/{identity_id:str}/delete") in paths
    for method, path in paths:
        url = path.replace("{identity_id:str}", str(someone)).replace(
            "{ticket_id:str}", str(uuid.uuid4()))
        for headers in ({}, HTMX):
            if method == "GET":
                response = await client.get(url, headers=headers)
            else:
                response = await client.post_form(url, {"confirm_email": "klient@example.com",
                                                        "reason": "x"}, headers=headers)
            assert response.status_code == 403, (method, path, headers)
    assert await Identity.exists().where(Identity.id == someone)
    assert not await AuditEvent.exists().where(AuditEvent.tag.like("staff:%"))


async def test_staff_find_an_id_and_see_its_accounts_without_secrets(client):
    await staff_signed_in(client)
    person = await factories.identity("anna.kowalska@example.com", first_name="Anna")
    await factories.account(person, name="Kwiaciarnia Róża")
    page = await client.get("/staff")
    assert 'href="/staff/clients"' in page.text and 'href="/staff/tickets"' in page.text
    found = await client.get("/staff?q=kowalska", headers=HTMX)
    assert found.text.lstrip().startswith('<div id="identity-results">')
    assert f'href="/staff/identities/{person}"' in found.text
    card = await client.get(f"/staff/identities/{person}")
    assert "Kwiaciarnia Róża" in card.text and "Właściciel" in card.text
    assert "Anna" in card.text
    for secret in ("$argon2", "password_hash", "totp"):
        assert secret not in card.text
    assert "Wyślij ponownie link weryfikacyjny" not in card.text  # it has a password
    for odd in ("q=%25", "q=" + "x" * 5000, "q=%00", "q=a&q=b"):
        expected = 400 if "%00" in odd else 200  # a NUL is refused (web/input.py)
        assert (await client.get(f"/staff?{odd}", headers=HTMX)).status_code == expected
    for bad in ("nie-uuid", uuid.uuid4(), "%00"):
        expected = 400 if bad == "%00" else 404
        assert (await client.get(f"/staff/identities/{bad}")).status_code == expected


async def test_staff_resend_verification_to_an_id_without_a_password(client):
    await staff_signed_in(client)
    waiting = await factories.identity("czeka@example.com", password=None)
    card = await client.get(f"/staff/identities/{waiting}")
    assert "Wyślij ponownie link weryfikacyjny" in card.text
    plain = await client.post_form(f"/staff/identities/{waiting}/verification", {})
    assert plain.status_code == 303
    assert "Wysłano ponownie link weryfikacyjny." in (await client.get(
        plain.headers["location"])).text
    htmx = await client.post_form(f"/staff/identities/{waiting}/verification", {}, htmx=True)
    assert htmx.status_code == 200 and htmx.text.lstrip().startswith('<div id="identity-card">')
    assert await OutboxEmail.count().where(OutboxEmail.to_address == "czeka@example.com") == 2
    ready = await factories.identity("gotowy@example.com")
    refused = await client.post_form(f"/staff/identities/{ready}/verification", {})
    assert refused.status_code == 422 and "ma już hasło" in refused.text


async def test_staff_delete_an_id_on_request_and_it_can_no_longer_sign_in(client, app):
    from tests.conftest import http_client

    await staff_signed_in(client)
    person = await factories.identity("usun.mnie@example.com")
    await factories.account(person, name="Konto do usunięcia")
    confirm = await client.get(f"/staff/identities/{person}/delete")
    assert "zostanie usunięte ze wszystkimi danymi" in confirm.text
    wrong = await client.post_form(f"/staff/identities/{person}/delete",
                                   {"confirm_email": "ktos@example.com", "reason": ""},
                                   htmx=True)
    assert wrong.status_code == 422
    assert wrong.text.lstrip().startswith('<form id="identity-delete-form"')
    assert field_error(wrong.text, "confirm_email") and field_error(wrong.text, "reason")
    assert await Identity.exists().where(Identity.id == person)
    done = await client.post_form(f"/staff/identities/{person}/delete",
                                  {"confirm_email": "usun.mnie@example.com",
                                   "reason": "Zgłoszenie 42"})
    assert done.status_code == 303 and done.headers["location"] == "/staff"
    assert "Usunięto Konto ID." in (await client.get("/staff")).text
    assert not await Identity.exists().where(Identity.id == person)
    async with http_client(app) as raw:
        from tests.conftest import Client

        other = Client(raw)
        refused = await other.post_form("/login", {"email": "usun.mnie@example.com",
                                                   "password": factories.PASSWORD})
        assert refused.status_code != 303
    staff_self = await Identity.select(Identity.id).where(Identity.email == STAFF_EMAIL).first()
    self_delete = await client.post_form(f"/staff/identities/{staff_self['id']}/delete",
                                         {"confirm_email": STAFF_EMAIL, "reason": "x"})
    assert self_delete.status_code == 422


async def test_staff_answer_a_ticket_and_the_person_is_mailed_and_sees_it(client, app):
    from tests.conftest import Client, http_client

    person = await factories.identity("klientka@example.com")
    await factories.account(person, name="Konto Klientki")
    async with http_client(app) as raw:
        customer = Client(raw)
        await customer.sign_in("klientka@example.com", factories.PASSWORD)
        await customer.post_form("/support/tickets", TICKET)
        ticket_id = (await Ticket.select(Ticket.id).first())["id"]

        await staff_signed_in(client)
        queue = await client.get("/staff/tickets")
        assert TICKET["subject"] in queue.text and "Konto Klientki" in queue.text
        fragment = await client.get("/staff/tickets?status=answered", headers=HTMX)
        assert fragment.text.lstrip().startswith('<div id="staff-ticket-list">')
        assert TICKET["subject"] not in fragment.text
        thread = await client.get(f"/staff/tickets/{ticket_id}")
        assert "klientka@example.com" in thread.text and "Odpowiedź zespołu wsparcia" in thread.text
        empty = await client.post_form(f"/staff/tickets/{ticket_id}", {"message": ""})
        assert empty.status_code == 422 and field_error(empty.text, "message")
        answered = await client.post_form(f"/staff/tickets/{ticket_id}",
                                          {"message": "Proszę włączyć integrację z KSeF."},
                                          htmx=True)
        assert answered.status_code == 200 and "Wysłano odpowiedź." in answered.text
        assert (await Ticket.select(Ticket.status).first())["status"] == "answered"
        mail = await last_mail("klientka@example.com")
        assert "Proszę włączyć integrację z KSeF." in mail["text_body"]
        assert f"/support/tickets/{ticket_id}" in mail["text_body"]
        seen = await customer.get(f"/support/tickets/{ticket_id}")
        assert "Zespół wsparcia" in seen.text and "Proszę włączyć integrację" in seen.text
        assert "Odpowiedziano" in seen.text
        assert STAFF_EMAIL not in seen.text  # staff appear as the team, not by name
        closed = await client.post_form(f"/staff/tickets/{ticket_id}/close", {})
        assert closed.status_code == 303
        tags = {e["tag"] for e in await AuditEvent.select(AuditEvent.tag)}
        assert {"staff:ticket:view", "staff:ticket:reply", "staff:ticket:close"} <= tags
        for bad in ("nie-uuid", uuid.uuid4()):
            assert (await client.get(f"/staff/tickets/{bad}")).status_code == 404
            assert (await client.post_form(f"/staff/tickets/{bad}", {"message": "x"})
                    ).status_code == 404


ODD = ["\x00", "a\x00b", "x" * 20_000, "😀" * 300, "<script>alert(1)</script>", "' OR 1=1 --",
       "\r\n\t", ""]


@pytest.mark.parametrize("value", ODD)
async def test_odd_input_never_breaks_a_staff_form(client, value):
    await staff_signed_in(client)
    person = await factories.identity("odd@example.com", password=None)
    await factories.account(person, name="Konto")
    for url, data in (
        (f"/staff/identities/{person}/delete", {"confirm_email": value, "reason": value}),
        (f"/staff/identities/{person}/delete", {"confirm_email": "odd@example.com",
                                                "reason": value or "x"}),
        (f"/staff/identities/{person}/verification", {"x": value}),
        ("/staff", None),
    ):
        for headers in ({}, HTMX):
            if data is None:
                response = await client.get(url, params={"q": value[:1000]}, headers=headers)
            else:
                response = await client.post_form(url, data, headers=headers)
            assert response.status_code < 500, (url, value[:20], response.status_code)
            if not await Identity.exists().where(Identity.id == person):
                return
