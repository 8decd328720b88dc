"""The company pickers of the ticket and API key forms (issue 20): an account with more
companies than one list shows gets a page of them and a search that keeps the form's values,
without JavaScript and as an htmx fragment; any company of the account may be chosen."""

from __future__ import annotations

import re
import uuid

import pytest

from portal.services import catalogue, companies
from portal.tables import ApiKey, Company, Ticket
from tests.conftest import field_error
from tests.views.test_api_keys import owner_signed_in
from tests.views.test_companies import HTMX

MANY = companies.PICKER_LIMIT + 20


@pytest.fixture(autouse=True)
async def seeded() -> None:
    await catalogue.seed()


async def big_account(client):
    _, account = await owner_signed_in(client)
    await Company.insert(*[
        Company(account=account["id"], key=uuid.uuid4().hex[:16],
                name=f"{'Piekarnia' if n % 2 else 'Apteka'} Łąkowa {n:03d}",
                nip=f"{7740000000 + n}") for n in range(MANY)])
    rows = await Company.select(Company.id, Company.name).where(
        Company.account == account["id"])
    return account, {row["name"]: row["id"] for row in rows}


def options(html: str) -> list[str]:
    select = re.search(r'<select[^>]*name="company".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]*)"', select)


def boxes(html: str) -> list[str]:
    return re.findall(r'name="company_ids" value="([^"]+)"', html)


async def test_the_ticket_form_lists_a_page_and_searches_keeping_the_values(client):
    _, ids = await big_account(client)
    page = (await client.get("/support")).text
    assert len(options(page)) == companies.PICKER_LIMIT + 1  # and "Nie dotyczy"
    assert f"Pokazano {companies.PICKER_LIMIT} z {MANY + 1} firm" in page
    assert 'name="company_search"' in page
    values = {"subject": "Faktura", "category": "billing", "message": "Treść zostaje.",
              "company": "", "company_q": "łąkowa 119", "company_search": "1"}
    for headers in ({}, HTMX):
        found = await client.post_form("/support/tickets", values, headers=headers)
        assert found.status_code == 200
        assert options(found.text) == ["", str(ids["Piekarnia Łąkowa 119"])]
        assert "Treść zostaje." in found.text and 'value="Faktura"' in found.text
        assert not field_error(found.text, "subject")
    assert await Ticket.count() == 0  # a search makes nothing
    # The company found (not on the first page) is chosen and kept through another search.
    chosen = str(ids["Piekarnia Łąkowa 119"])
    again = await client.post_form("/support/tickets", {**values, "company": chosen,
                                                        "company_q": "apteka"})
    assert options(again.text)[:2] == ["", chosen] and len(options(again.text)) == 62
    created = await client.post_form("/support/tickets", {**values, "company": chosen,
                                                          "company_search": ""})
    assert created.status_code == 303
    assert (await Ticket.select(Ticket.company).first())["company"] == ids[
        "Piekarnia Łąkowa 119"]


async def test_the_ticket_form_of_a_small_account_has_no_search(client):
    await owner_signed_in(client)
    page = (await client.get("/support")).text
    assert 'name="company_search"' not in page and len(options(page)) == 2


async def test_the_api_key_form_lists_a_page_searches_and_keeps_the_checked(client):
    _, ids = await big_account(client)
    page = (await client.get("/api-keys")).text
    assert len(boxes(page)) == companies.PICKER_LIMIT and 'name="company_search"' in page
    first = str(ids["Apteka Łąkowa 000"])
    values = {"name": "Księgowość", "scopes": ["read"], "company_ids": [first],
              "company_q": "7740000117", "company_search": "1"}
    for headers in ({}, HTMX):
        found = await client.post_form("/api-keys", values, headers=headers)
        assert found.status_code == 200
        assert boxes(found.text) == [first, str(ids["Piekarnia Łąkowa 117"])]
        assert re.search(rf'value="{first}" checked', found.text)
        assert 'value="Księgowość"' in found.text
    assert await ApiKey.count() == 0
    # Both chosen (one never on the first page): the key is limited to both.
    chosen = [first, str(ids["Piekarnia Łąkowa 117"])]
    made = await client.post_form("/api-keys", {**values, "company_ids": chosen,
                                                "company_search": ""})
    assert made.status_code == 200 and "data-testid=\"api-key-secret\"" in made.text
    row = await ApiKey.select(ApiKey.company_ids).first()
    assert sorted(str(c) for c in row["company_ids"]) == sorted(chosen)


async def test_a_search_for_nothing_and_odd_input_never_fail(client):
    await big_account(client)
    for text in ("nie ma takiej", "%", "_", "x" * 5000, "\x01\x7f", "ab"):
        response = await client.post_form("/support/tickets", {
            "subject": "", "category": "technical", "message": "", "company": "zły",
            "company_q": text, "company_search": "1"})
        assert response.status_code == 200, text
        response = await client.post_form("/api-keys", {
            "name": "", "scopes": ["read"], "company_ids": ["zły", str(uuid.uuid4())],
            "company_q": text, "company_search": "1"})
        assert response.status_code == 200, text
    refused = await client.post_form("/api-keys", {
        "name": "x", "scopes": ["read"], "company_ids": [str(uuid.uuid4())]})
    assert refused.status_code == 422 and field_error(refused.text, "company_ids")


async def test_enter_searches_only_while_the_search_box_holds_new_text(client):
    """Enter in any field of the form "clicks" its hidden default button (company_default):
    with text in the search box not yet searched for it is a search, otherwise the form's
    own work, as a page and as an htmx fragment."""
    _, ids = await big_account(client)
    page = (await client.get("/support")).text
    first_submit = re.search(r'<form id="ticket-form".*?(<button[^>]*type="submit"[^>]*>)',
                             page, re.S).group(1)
    assert 'name="company_default"' in first_submit and 'aria-hidden="true"' in first_submit
    assert 'name="company_q_shown" value=""' in page
    values = {"subject": "Faktura", "category": "billing", "message": "Treść.", "company": "",
              "company_default": "1"}
    for headers in ({}, HTMX):
        found = await client.post_form("/support/tickets", {
            **values, "company_q": " łąkowa 119 ", "company_q_shown": ""}, headers=headers)
        assert found.status_code == 200
        assert options(found.text) == ["", str(ids["Piekarnia Łąkowa 119"])]
        assert 'name="company_q_shown" value="łąkowa 119"' in found.text
    assert await Ticket.count() == 0
    sent = await client.post_form("/support/tickets", {
        **values, "company": str(ids["Piekarnia Łąkowa 119"]), "company_q": "łąkowa 119 ",
        "company_q_shown": "łąkowa 119"})
    assert sent.status_code == 303 and await Ticket.count() == 1
    # The API key form: the same rule.
    key = {"name": "Księgowość", "scopes": ["read"], "company_default": "1"}
    found = await client.post_form("/api-keys", {**key, "company_q": "7740000117",
                                                 "company_q_shown": "apteka"})
    assert boxes(found.text) == [str(ids["Piekarnia Łąkowa 117"])]
    assert await ApiKey.count() == 0
    made = await client.post_form("/api-keys", {
        **key, "company_ids": [str(ids["Piekarnia Łąkowa 117"])], "company_q": "7740000117",
        "company_q_shown": "7740000117"})
    assert 'data-testid="api-key-secret"' in made.text and await ApiKey.count() == 1
