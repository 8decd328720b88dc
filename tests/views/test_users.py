"""/users: the people list fragment, adding by email, invitations through their link, a
person's page (role, the access matrix, removal with re-authentication), leaving, the audit log
and its CSV, the account's MFA policy; tenant isolation of every route with an id; members
change nothing; access ends at the next request; a constant number of SQL queries; no 500."""

from __future__ import annotations

import re
import uuid

import pytest

from portal.tables import (
    Account,
    AuditEvent,
    CompanyAccess,
    Identity,
    Invitation,
    Membership,
    OutboxEmail,
    Session,
)
from portal.testing import factories
from tests.conftest import (
    DASH,
    HTMX,
    Client,
    counting_queries,
    field_error,
    http_client,
    last_mail,
    link_in,
)


async def owner_signed_in(client, email="szefowa@example.com", name="Konto Szefowej"):
    identity_id = await factories.identity(email, first_name="Anna", last_name="Szefowa")
    account = await factories.account(identity_id, name=name)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id, account


async def add_people(account, count: int, prefix: str = "osoba") -> None:
    """``count`` members made in bulk (each with one company), like the benchmark does."""
    identities = await Identity.insert(*[
        Identity(email=f"{prefix}{i:04d}@example.com") for i in range(count)
    ]).returning(Identity.id)
    memberships = await Membership.insert(*[
        Membership(account=account["id"], identity=row["id"], role="member")
        for row in identities
    ]).returning(Membership.id)
    await CompanyAccess.insert(*[
        CompanyAccess(membership=row["id"], company=account["main_company_id"], level="view")
        for row in memberships
    ])


async def snapshot() -> dict[str, list]:
    return {
        "membership": await Membership.select().order_by(Membership.id),
        "company_access": await CompanyAccess.select().order_by(CompanyAccess.id),
        "invitation": await Invitation.select().order_by(Invitation.id),
        "account": await Account.select().order_by(Account.id),
    }




async def membership_of(identity_id) -> dict:
    return await Membership.select().where(Membership.identity == identity_id).first()


# --- the list -----------------------------------------------------------------------------------


async def test_the_list_is_a_page_and_an_htmx_fragment(client):
    _, account = await owner_signed_in(client)
    await add_people(account, 30)
    page = await client.get("/users")
    assert page.status_code == 200 and "<html" in page.text
    assert "Użytkownicy" in page.text and "Dodaj osobę" in page.text
    assert "Dziennik zdarzeń konta" in page.text
    assert f"Osoby 1{DASH}25 z 31" in page.text
    fragment = await client.get("/users?q=osoba00&sort=-email", headers=HTMX)
    assert fragment.headers["vary"] == "HX-Request"
    assert fragment.text.lstrip().startswith('<div id="people-list"')
    assert "<html" not in fragment.text and 'hx-swap-oob="innerHTML:#live"' in fragment.text
    emails = re.findall(r'>(osoba\d{4}@example.com)</a>', fragment.text)
    assert emails == sorted(emails, reverse=True) and len(emails) == 25
    assert 'aria-sort="descending"' in fragment.text


async def test_the_list_shows_status_role_companies_sign_in_and_mfa(client):
    _, account = await owner_signed_in(client)
    await Account.update({Account.mfa_policy: "any"}).where(Account.id == account["id"])
    await Identity.update({Identity.mfa_email_enabled: True}).where(
        Identity.email == "szefowa@example.com")
    member = await factories.identity("bez-mfa@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "edit"})
    await client.post_form("/users/new", {"email": "nowy@example.com", "role": "admin"})
    html = (await client.get("/users")).text
    row = re.search(r"<tr>\s*<th scope=\"row\">\s*<a[^>]*>bez-mfa@example.com.*?</tr>", html,
                    re.S).group(0)
    assert "Użytkownik" in row and "Aktywny" in row and "nigdy" in row
    assert "nie spełnia wymogu konta" in row
    invited = re.search(r"<tr>\s*<th scope=\"row\">\s*nowy@example.com.*?</tr>", html,
                        re.S).group(0)
    assert "Zaproszony" in invited and "Administrator" in invited
    assert "Wyślij ponownie" in invited and "Wycofaj" in invited
    me = re.search(r"szefowa@example.com</a>.*?</tr>", html, re.S).group(0)
    assert "To Ty" in me and "Kod e-mail" in me and "spełnia wymóg konta" in me
    only_missing = (await client.get("/users?mfa=missing", headers=HTMX)).text
    assert "bez-mfa@example.com" in only_missing and "szefowa@example.com" not in only_missing


@pytest.mark.parametrize("query", [
    "page=-1", "page=abc", "page=0", "page=99999999999999999999", "page=1.5", "sort=unknown",
    "sort=email;drop", "q=" + "x" * 5000, "q=%00%01", "q=%25%5F", "page=&sort=&q=",
    "page=1&page=2", "q=a&q=b", "role=boss", "status=%00", "mfa=all", "role=owner&status=invited",
])
async def test_odd_query_strings_never_break_the_list(client, query):
    _, account = await owner_signed_in(client)
    await add_people(account, 30)
    for headers in ({}, HTMX):
        response = await client.get(f"/users?{query}", headers=headers)
        expected = 400 if "%00" in query else 200  # a NUL is refused (web/input.py)
        assert response.status_code == expected, (query, response.status_code)


async def test_members_see_a_read_only_list_without_invitations(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "view"})
    await Invitation.insert(Invitation(account=account["id"], email="zaproszony@example.com",
                                       token_hash="a" * 64, expires_at=db_now_plus_days(7)))
    await client.sign_in("czlonek@example.com", factories.PASSWORD)
    html = (await client.get("/users")).text
    assert "szef@example.com" in html and "czlonek@example.com" in html
    assert "zaproszony@example.com" not in html
    assert "Dodaj osobę" not in html and "Zarządzaj" not in html
    assert "Ostatnie logowanie" not in html and "Dziennik zdarzeń konta" not in html
    assert "Twoja rola:" in html and "Konto Szefa: Podgląd" in html
    assert "Opuść to konto" in html


def db_now_plus_days(days: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=days)


# --- adding -------------------------------------------------------------------------------------


async def test_adding_a_person_answers_the_same_with_and_without_an_id(client):
    _, account = await owner_signed_in(client)
    form = await client.get("/users/new", headers=HTMX)
    assert form.text.lstrip().startswith('<form id="person-add-form"')
    assert 'role="radiogroup"' in form.text and "data-focus-after-swap" in form.text
    assert "<html" in (await client.get("/users/new")).text
    first = await factories.identity("pierwsza@example.com")
    company = str(account["main_company_id"])
    answers = []
    for email in ("Pierwsza@Example.com", "bez-konta@example.com"):
        plain = await client.post_form("/users/new", {"email": email, "role": "member",
                                                      f"level-{company}": "edit"})
        assert plain.status_code == 303 and plain.headers["location"] == "/users"
        page = await client.get("/users")
        answers.append(re.search(r'<div id="live"[^>]*>(.*?)</div>', page.text, re.S).group(1))
    assert answers[0] == answers[1]
    assert "Wysłaliśmy zaproszenie" in answers[0]
    page = await client.get("/users")
    for email in ("pierwsza@example.com", "bez-konta@example.com"):
        row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(email)}.*?</tr>", page.text,
                        re.S | re.I).group(0)
        assert "Zaproszon" in row, row
    assert await membership_of(first) is None
    htmx = await client.post_form("/users/new", {"email": "druga@example.com", "role": "admin"},
                                  htmx=True)
    assert htmx.status_code == 200 and htmx.headers["HX-Redirect"] == "/users"
    assert "Konto Szefowej" in (await last_mail("druga@example.com"))["text_body"]


async def test_the_same_email_is_refused_with_the_field_marked(client):
    await owner_signed_in(client)
    await client.post_form("/users/new", {"email": "ktos@example.com", "role": "member"})
    before = await snapshot()
    for email, htmx in (("KTOS@example.com", False), ("ktos@EXAMPLE.COM", True),
                        ("SZEFOWA@example.com", True)):
        response = await client.post_form("/users/new", {"email": email, "role": "member"},
                                          htmx=htmx)
        assert response.status_code == 422
        assert field_error(response.text, "email") in (
            "Ta osoba ma już zaproszenie do tego konta. Możesz je wysłać ponownie z listy osób.",
            "Ta osoba już należy do tego konta.")
        assert f'value="{email}"' in response.text
    assert await snapshot() == before


@pytest.mark.parametrize("data", [
    {"email": "", "role": "member"},
    {"email": "x" * 5000, "role": "member"},
    {"email": "ok@example.com", "role": "szef"},
    {"email": "ok@example.com", "role": "member", "level-nie-uuid": "view"},
    {"email": "ok@example.com", "role": "member", f"level-{uuid.uuid4()}": "view"},
    {"email": "ok@example.com", "role": "member", "level-": "view"},
    {"email": "ok@example.com", "role": "member", "level-" + "x" * 3000: "edit"},
    {"email": "ok@example.com"},
    {"email": "\x00@example.com", "role": "member"},
    {},
])
async def test_odd_input_when_adding_is_422_or_404_never_500(client, data):
    _, account = await owner_signed_in(client)
    before = await snapshot()
    for htmx in (False, True):
        response = await client.post_form("/users/new", data, htmx=htmx)
        nul = any("\x00" in key + value for key, value in data.items())
        allowed = (400,) if nul else (404, 422)  # a NUL is refused (web/input.py)
        assert response.status_code in allowed, (data, response.status_code)
    bad_level = await client.post_form("/users/new", {
        "email": "ok@example.com", "role": "member",
        f"level-{account['main_company_id']}": "wszystko"})
    assert bad_level.status_code == 422
    assert await snapshot() == before


async def test_an_invitation_from_mail_to_registration_to_the_switcher(client, app):
    _, account = await owner_signed_in(client)
    response = await client.post_form("/users/new", {
        "email": "nowa@example.com", "role": "member",
        f"level-{account['main_company_id']}": "view"})
    assert response.status_code == 303
    assert "Wysłaliśmy zaproszenie" in (await client.get("/users")).text
    link = link_in(await last_mail("nowa@example.com"), "/invitations/")
    async with http_client(app) as raw:
        newcomer = Client(raw)
        page = await newcomer.get(link)
        assert page.status_code == 200 and "Konto Szefowej" in page.text
        assert "Załóż Konto ID i przyjmij zaproszenie" in page.text
        weak = await newcomer.post_form(link, {"password": "abc", "password_confirm": "abc"})
        assert weak.status_code == 422 and field_error(weak.text, "password")
        done = await newcomer.post_form(link, {"password": factories.PASSWORD,
                                               "password_confirm": factories.PASSWORD})
        assert done.status_code == 303 and done.headers["location"] == "/"
        home = await newcomer.get("/")
        assert home.status_code == 200 and "Dołączono do konta firmy." in home.text
        switcher = await newcomer.get("/accounts", headers=HTMX)
        assert "Konto Szefowej" in switcher.text
        companies = await newcomer.get("/companies")
        assert "Konto Szefowej" in companies.text
        again = await newcomer.get(link)
        assert again.status_code == 410
    identity = await Identity.select().where(Identity.email == "nowa@example.com").first()
    assert (await membership_of(identity["id"]))["account"] == account["id"]
    # Signing in by accepting the invitation is a sign-in like any other: the list says when.
    assert identity["last_login_at"] is not None
    listing = await client.get("/users?q=nowa")
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*nowa@example\.com.*?</tr>", listing.text, re.S)
    assert row and "nigdy" not in row.group(0)


async def test_resend_gives_a_new_link_and_the_old_one_is_gone(client):
    await owner_signed_in(client)
    await client.post_form("/users/new", {"email": "nowa@example.com", "role": "member"})
    old = link_in(await last_mail("nowa@example.com"), "/invitations/")
    invitation = await Invitation.select().first()
    resent = await client.post_form(f"/users/invitations/{invitation['id']}/resend",
                                    {"q": "nowa", "sort": "email"}, htmx=True)
    assert resent.status_code == 200
    assert resent.text.lstrip().startswith('<div id="people-list"')
    assert "Wysłaliśmy zaproszenie ponownie" in resent.text
    new = link_in(await last_mail("nowa@example.com"), "/invitations/")
    assert new != old
    assert (await client.get(old)).status_code == 410
    assert (await client.get(new)).status_code == 200
    plain = await client.post_form(f"/users/invitations/{invitation['id']}/withdraw",
                                   {"q": "nowa"})
    assert plain.status_code == 303 and plain.headers["location"] == "/users?q=nowa"
    assert (await client.get(new)).status_code == 410
    assert (await Invitation.select().first())["state"] == "withdrawn"


async def test_a_lapsed_invitation_shows_as_expired_and_its_link_says_so(client):
    await owner_signed_in(client)
    await client.post_form("/users/new", {"email": "spozniona@example.com", "role": "member"})
    link = link_in(await last_mail("spozniona@example.com"), "/invitations/")
    await Invitation.raw("UPDATE invitation SET expires_at = now() - interval '1 minute'")
    page = await client.get(link)
    assert page.status_code == 410 and "To zaproszenie wygasło." in page.text
    row = re.search(r"spozniona@example.com.*?</tr>", (await client.get("/users")).text,
                    re.S).group(0)
    assert "Zaproszenie wygasło" in row and "Wyślij ponownie" in row
    invitation = await Invitation.select().first()
    await client.post_form(f"/users/invitations/{invitation['id']}/resend", {})
    fresh = link_in(await last_mail("spozniona@example.com"), "/invitations/")
    assert (await client.get(fresh)).status_code == 200


async def test_an_invitation_for_an_existing_id_asks_to_sign_in_then_accepts(client, app):
    await owner_signed_in(client)
    await client.post_form("/users/new", {"email": "pozniej@example.com", "role": "member"})
    link = link_in(await last_mail("pozniej@example.com"), "/invitations/")
    later = await factories.identity("pozniej@example.com")
    async with http_client(app) as raw:
        person = Client(raw)
        page = await person.get(link)
        assert "Zaloguj się, aby przyjąć zaproszenie" in page.text
        assert "/login?next=/invitations/" in page.text
        refused = await person.post_form(link, {"password": factories.PASSWORD,
                                                "password_confirm": factories.PASSWORD})
        assert refused.status_code == 422
        await person.sign_in("pozniej@example.com", factories.PASSWORD)
        assert (await person.get("/")).status_code == 303  # no account yet
        offers = (await person.get("/accounts/new")).text
        assert "Zaproszenia do kont" in offers and "Konto Szefowej" in offers
        accepted = await person.post_form(link, {})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/"
        assert (await person.get("/")).status_code == 200
    assert (await membership_of(later))["role"] == "member"


async def test_an_invitation_is_accepted_or_declined_from_the_switcher(client, app):
    _, account = await owner_signed_in(client)
    other = await factories.account(await factories.identity("inny@example.com"),
                                    name="Drugie Konto")
    person = await factories.identity("gosc@example.com")
    await factories.account(person, name="Własne Konto")
    for target in (account, other):
        await Invitation.insert(Invitation(account=target["id"], email="Gosc@Example.com",
                                           token_hash=uuid.uuid4().hex * 2, role="admin",
                                           expires_at=db_now_plus_days(7)))
    async with http_client(app) as raw:
        guest = Client(raw)
        await guest.sign_in("gosc@example.com", factories.PASSWORD)
        panel = (await guest.get("/accounts?next=/companies", headers=HTMX)).text
        assert "Zaproszenia do kont" in panel
        ids = re.findall(r'/accounts/invitations/([0-9a-f-]{36})/accept', panel)
        assert len(ids) == 2
        stranger_try = await client.post_form(f"/accounts/invitations/{ids[0]}/accept", {})
        assert stranger_try.status_code == 404
        accepted = await guest.post_form(f"/accounts/invitations/{ids[0]}/accept", {})
        assert accepted.status_code == 303
        declined = await guest.post_form(f"/accounts/invitations/{ids[1]}/decline",
                                         {"next": "/companies"})
        assert declined.status_code == 303 and declined.headers["location"] == "/companies"
        for bad in ("nie-uuid", str(uuid.uuid4()), ids[0]):
            response = await guest.post_form(f"/accounts/invitations/{bad}/accept", {})
            assert response.status_code == 404
        panel = (await guest.get("/accounts", headers=HTMX)).text
        assert "Zaproszenia do kont" not in panel
    states = sorted(r["state"] for r in await Invitation.select(Invitation.state))
    assert states == ["accepted", "declined"]
    assert await Membership.count().where(Membership.identity == person) == 2


@pytest.mark.parametrize("token", ["nie-ma", "x" * 3000, "%00", "..%2F..%2Fetc"])
async def test_unknown_invitation_links_are_gone_not_errors(client, token):
    gone = (400,) if "%00" in token else (404, 410)  # a NUL is refused (web/input.py)
    assert (await client.get(f"/invitations/{token}")).status_code in gone
    assert (await client.post_form(f"/invitations/{token}", {
        "password": factories.PASSWORD, "password_confirm": factories.PASSWORD})
    ).status_code in gone
    assert (await client.post_form(f"/invitations/{token}/decline", {})).status_code in gone


# --- a person's page ----------------------------------------------------------------------------


async def test_changing_a_role_inline_and_the_last_owner_stays(client):
    owner, account = await owner_signed_in(client)
    member = await factories.identity("czlonek@example.com")
    membership_id = await factories.membership(member, account["id"], "member",
                                               {account["main_company_id"]: "view"})
    page = await client.get(f"/users/{membership_id}")
    assert page.status_code == 200 and 'role="radiogroup"' in page.text
    saved = await client.post_form(f"/users/{membership_id}/role", {"role": "admin"}, htmx=True)
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith('<div id="person-panel"')
    assert "Właściciele i administratorzy zarządzają wszystkimi firmami" in saved.text
    assert "Zmieniono rolę." in saved.text
    assert (await membership_of(member))["role"] == "admin"
    assert await CompanyAccess.count() == 0
    own = (await membership_of(owner))["id"]
    for htmx in (False, True):
        refused = await client.post_form(f"/users/{own}/role", {"role": "member"}, htmx=htmx)
        assert refused.status_code == 422
        assert field_error(refused.text, "role").startswith("Konto musi mieć co najmniej")
    assert (await membership_of(owner))["role"] == "owner"
    for role in ("", "szef", "x" * 1000, "owner; drop"):
        assert (await client.post_form(f"/users/{membership_id}/role", {"role": role})
                ).status_code == 422


async def test_the_matrix_sets_levels_and_searches_companies(client):
    _, account = await owner_signed_in(client)
    second = await factories.company(account["id"], name="Piekarnia")
    member = await factories.identity("czlonek@example.com")
    membership_id = await factories.membership(member, account["id"], "member")
    fragment = await client.get(f"/users/{membership_id}/access?q=piek", headers=HTMX)
    assert fragment.text.lstrip().startswith('<section id="person-access"')
    assert "Piekarnia" in fragment.text and "Konto Szefowej" not in fragment.text
    saved = await client.post_form(f"/users/{membership_id}/access", {
        f"level-{account['main_company_id']}": "manage", f"level-{second}": "none"}, htmx=True)
    assert saved.status_code == 200 and "Zapisano dostęp do firm." in saved.text
    assert re.search(rf'name="level-{account["main_company_id"]}" value="manage" checked',
                     saved.text)
    rows = await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level)
    assert rows == [{"company": account["main_company_id"], "level": "manage"}]
    plain = await client.post_form(f"/users/{membership_id}/access",
                                   {f"level-{second}": "view"})
    assert plain.status_code == 303
    bad = await client.post_form(f"/users/{membership_id}/access",
                                 {f"level-{second}": "root"}, htmx=True)
    assert bad.status_code == 422 and "Wybierz poziom dostępu z listy." in bad.text
    assert await CompanyAccess.count() == 2


async def test_set_all_shown_works_without_javascript(client):
    """Issue 13: the matrix's "set all shown to …" is a submit button the server handles: on a
    person's page it saves that level for every company shown; in the add form it only shows
    the form again with the new choices (nobody is invited yet)."""
    _, account = await owner_signed_in(client)
    second = await factories.company(account["id"], name="Piekarnia")
    member = await factories.identity("czlonek@example.com")
    membership_id = await factories.membership(member, account["id"], "member")
    page = (await client.get(f"/users/{membership_id}")).text
    assert 'name="matrix_action" value="set_all"' in page and "tylko odczyt" in page
    shown = {f"level-{account['main_company_id']}": "none", f"level-{second}": "manage"}
    saved = await client.post_form(f"/users/{membership_id}/access", {
        **shown, "matrix_action": "set_all", "matrix_level": "view"})
    assert saved.status_code == 303
    rows = await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level).where(
        CompanyAccess.membership == membership_id)
    assert sorted(row["level"] for row in rows) == ["view", "view"]
    odd = await client.post_form(f"/users/{membership_id}/access", {
        **shown, "matrix_action": "set_all", "matrix_level": "root"}, htmx=True)
    assert odd.status_code == 422 and await CompanyAccess.count() == 2
    again = await client.post_form("/users/new", {
        "email": "nowa@example.com", "role": "member", **shown,
        "matrix_action": "set_all", "matrix_level": "edit"})
    assert again.status_code == 200 and 'value="nowa@example.com"' in again.text
    assert re.search(rf'name="level-{second}" value="edit" checked', again.text)
    assert await Invitation.count() == 0


async def test_removal_needs_reauthentication_and_ends_access_at_the_next_request(client, app):
    _, account = await owner_signed_in(client)
    member = await factories.identity("odchodzi@example.com")
    membership_id = await factories.membership(member, account["id"], "member",
                                               {account["main_company_id"]: "view"})
    async with http_client(app) as raw:
        other_browser = Client(raw)
        await other_browser.sign_in("odchodzi@example.com", factories.PASSWORD)
        assert (await other_browser.get("/companies")).status_code == 200

        await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes'")
        confirm = await client.get(f"/users/{membership_id}/remove", headers=HTMX)
        assert confirm.text.lstrip().startswith('<form id="person-remove-form"')
        assert 'name="password"' in confirm.text
        refused = await client.post_form(f"/users/{membership_id}/remove", {})
        assert refused.status_code == 422 and field_error(refused.text, "password")
        wrong = await client.post_form(f"/users/{membership_id}/remove", {"password": "nie to"})
        assert wrong.status_code == 422
        assert await Membership.exists().where(Membership.id == membership_id)
        # The member still works in the meantime...
        assert (await other_browser.get("/companies", headers=HTMX)).status_code == 200
        done = await client.post_form(f"/users/{membership_id}/remove",
                                      {"password": factories.PASSWORD})
        assert done.status_code == 303 and done.headers["location"] == "/users"
        # ...and loses the account at their very next request, in the open session.
        after = await other_browser.get("/companies")
        assert after.status_code == 303 and after.headers["location"] == "/accounts/new"
        htmx_after = await other_browser.get("/companies", headers=HTMX)
        assert htmx_after.headers.get("HX-Redirect") == "/accounts/new"
        assert "Konto Szefowej" not in (await other_browser.get("/accounts")).text
    assert not await Membership.exists().where(Membership.id == membership_id)
    assert "Konto Szefowej" in (await last_mail("odchodzi@example.com"))["text_body"]


async def test_a_downgraded_admin_loses_people_management_at_the_next_request(client, app):
    _, account = await owner_signed_in(client)
    admin = await factories.identity("admin@example.com")
    membership_id = await factories.membership(admin, account["id"], "admin")
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("admin@example.com", factories.PASSWORD)
        assert (await other.get("/users/new")).status_code == 200
        await client.post_form(f"/users/{membership_id}/role", {"role": "member"})
        assert (await other.get("/users/new")).status_code == 403
        assert (await other.post_form("/users/new", {"email": "x@example.com",
                                                     "role": "member"})).status_code == 403


async def test_admins_see_owners_but_cannot_touch_them(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto")
    admin = await factories.identity("admin@example.com")
    await factories.membership(admin, account["id"], "admin")
    await client.sign_in("admin@example.com", factories.PASSWORD)
    owner_membership = (await membership_of(owner))["id"]
    page = (await client.get(f"/users/{owner_membership}")).text
    assert "Rolę właściciela może zmienić tylko inny właściciel." in page
    assert "Usuń z konta" not in page
    before = await snapshot()
    assert (await client.post_form(f"/users/{owner_membership}/role", {"role": "member"})
            ).status_code == 403
    assert (await client.post_form(f"/users/{owner_membership}/remove", {})).status_code == 403
    assert (await client.post_form("/users/new", {"email": "nowy@example.com", "role": "owner"})
            ).status_code == 403
    assert await snapshot() == before


# --- leaving ------------------------------------------------------------------------------------


async def test_leaving_an_account_and_the_last_owner_cannot(client, app):
    owner, account = await owner_signed_in(client)
    page = (await client.get("/users/leave")).text
    assert "Jesteś jedynym właścicielem" in page
    refused = await client.post_form("/users/leave", {})
    assert refused.status_code == 422
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member")
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("czlonek@example.com", factories.PASSWORD)
        left = await other.post_form("/users/leave", {})
        assert left.status_code == 303
        assert (await other.get("/")).headers["location"] == "/accounts/new"
    assert [r["identity"] for r in await Membership.select()] == [owner]


# --- who may change people ----------------------------------------------------------------------


def user_routes(app) -> set[tuple[str, str]]:
    from litestar.routes import HTTPRoute

    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and (route.path.startswith("/users/{")
                                             or route.path.startswith("/users/invitations/{")):
            for handler in route.route_handlers:
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    found.add((method, route.path))
    return found


def calls(client, target: str):
    form = {"role": "admin", "password": factories.PASSWORD, "email": "x@example.com",
            "level-" + str(uuid.uuid4()): "view"}
    return [
        ("GET", "/users/{membership_id:str}", lambda h: client.get(f"/users/{target}",
                                                                   headers=h)),
        ("GET", "/users/{membership_id:str}/access",
         lambda h: client.get(f"/users/{target}/access", headers=h)),
        ("POST", "/users/{membership_id:str}/access",
         lambda h: client.post_form(f"/users/{target}/access", form, headers=h)),
        ("POST", "/users/{membership_id:str}/role",
         lambda h: client.post_form(f"/users/{target}/role", form, headers=h)),
        ("GET", "/users/{membership_id:str}/remove",
         lambda h: client.get(f"/users/{target}/remove", headers=h)),
        ("POST", "/users/{membership_id:str}/remove",
         lambda h: client.post_form(f"/users/{target}/remove", form, headers=h)),
        ("POST", "/users/invitations/{invitation_id:str}/resend",
         lambda h: client.post_form(f"/users/invitations/{target}/resend", form, headers=h)),
        ("POST", "/users/invitations/{invitation_id:str}/withdraw",
         lambda h: client.post_form(f"/users/invitations/{target}/withdraw", form, headers=h)),
    ]


async def test_every_route_with_an_id_from_another_account_is_404(client, app):
    await owner_signed_in(client, "ja@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    their_member = await factories.identity("ich@example.com")
    their_membership = await factories.membership(their_member, theirs["id"], "member")
    await Invitation.insert(Invitation(account=theirs["id"], email="ich-zaproszony@example.com",
                                       token_hash="b" * 64, expires_at=db_now_plus_days(7)))
    their_invitation = (await Invitation.select().first())["id"]
    their_owner = (await membership_of(stranger))["id"]
    before = await snapshot()
    audit_before = await AuditEvent.count()
    mails_before = await OutboxEmail.count()
    tried = set()
    ids = [their_membership, their_owner, their_invitation, uuid.uuid4(), "nie-uuid", "1",
           "%00", "x" * 3000]
    for target in ids:
        for headers in ({}, HTMX):
            for method, path, call in calls(client, str(target)):
                response = await call(headers)
                expected = 400 if target == "%00" else 404  # a NUL is refused
                assert response.status_code == expected, (method, path, target, headers,
                                                          response.status_code)
                assert "Obce Konto" not in response.text and "ich@example.com" not in response.text
                tried.add((method, path))
    assert tried == user_routes(app)  # a new route with an id must be added here
    assert await snapshot() == before
    assert await AuditEvent.count() == audit_before and await OutboxEmail.count() == mails_before
    listing = (await client.get("/users?q=ich")).text
    assert "ich@example.com" not in listing and "ich-zaproszony" not in listing
    log = (await client.get("/users/audit")).text + (await client.get("/users/audit.csv")).text
    assert "ich@example.com" not in log and "Obce Konto" not in log


async def test_members_cannot_change_anything(client, app):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    colleague = await factories.identity("kolega@example.com")
    colleague_membership = await factories.membership(colleague, account["id"], "member")
    await Invitation.insert(Invitation(account=account["id"], email="zaproszony@example.com",
                                       token_hash="c" * 64, expires_at=db_now_plus_days(7)))
    invitation = (await Invitation.select().first())["id"]
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "manage"})
    await client.sign_in("czlonek@example.com", factories.PASSWORD)
    before = await snapshot()
    for headers in ({}, HTMX):
        assert (await client.get("/users/new", headers=headers)).status_code == 403
        assert (await client.post_form("/users/new", {"email": "x@example.com",
                                                      "role": "member"}, headers=headers)
                ).status_code == 403
        for target in (colleague_membership, invitation):
            for method, path, call in calls(client, str(target)):
                response = await call(headers)
                assert response.status_code == 403, (method, path, response.status_code)
        for path in ("/users/audit", "/users/audit.csv"):
            assert (await client.get(path, headers=headers)).status_code == 403
        assert (await client.post_form("/account/mfa-policy", {"mfa_policy": "none"},
                                       headers=headers)).status_code == 403
    assert await snapshot() == before
    assert await AuditEvent.count().where(AuditEvent.account_id.is_not_null()) == 0


# --- the audit log ------------------------------------------------------------------------------


async def test_the_audit_log_shows_filters_and_exports_csv(client):
    _, account = await owner_signed_in(client)
    member = await factories.identity("czlonek@example.com")
    membership_id = await factories.membership(member, account["id"], "member")
    await client.post_form(f"/users/{membership_id}/role", {"role": "admin"})
    await client.post_form("/users/new", {"email": "=cmd@example.com", "role": "member"})
    page = await client.get("/users/audit")
    assert page.status_code == 200 and "Zmieniono rolę" in page.text
    assert "Wysłano zaproszenie" in page.text and "Użytkownik → Administrator" in page.text
    fragment = await client.get("/users/audit?what=membership&who=czlonek", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="audit-list"')
    assert "Zmieniono rolę" in fragment.text and "Wysłano zaproszenie" not in fragment.text
    csv = await client.get("/users/audit.csv?what=invitation")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.lstrip("\ufeff").strip().splitlines()
    assert lines[0].startswith("time_utc,actor_email") and len(lines) == 2
    assert ",'=cmd@example.com," in lines[1]  # never a formula in a spreadsheet
    for query in ("from=wczoraj", "to=2026-02-31", "what=%00", "who=" + "x" * 5000, "page=-5",
                  "from=2026-01-01&to=2020-01-01"):
        expected = 400 if "%00" in query else 200  # a NUL is refused (web/input.py)
        for headers in ({}, HTMX):
            response = await client.get(f"/users/audit?{query}", headers=headers)
            assert response.status_code == expected
        assert (await client.get(f"/users/audit.csv?{query}")).status_code == expected


# --- the account's MFA policy -------------------------------------------------------------------


async def test_owners_set_the_mfa_policy_on_the_account_page(client, app):
    owner, account = await owner_signed_in(client)
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member")
    page = (await client.get("/account")).text
    assert "Logowanie dwuetapowe w tym koncie" in page and 'name="mfa_policy"' in page
    refused = await client.post_form("/account/mfa-policy", {"mfa_policy": "any"}, htmx=True)
    assert refused.status_code == 422 and field_error(refused.text, "mfa_policy")
    assert (await client.post_form("/account/mfa-policy", {"mfa_policy": "sms"})
            ).status_code == 422
    await Identity.update({Identity.mfa_email_enabled: True}).where(Identity.id == owner)
    saved = await client.post_form("/account/mfa-policy", {"mfa_policy": "any"}, htmx=True)
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith('<section id="account-mfa-policy"')
    assert "Osoby, które nie spełniają wymogu: 1." in saved.text
    assert (await Account.select().first())["mfa_policy"] == "any"
    assert await AuditEvent.exists().where(AuditEvent.tag == "account:mfa_policy:change")
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("czlonek@example.com", factories.PASSWORD)
        blocked = await other.get("/users")
        assert blocked.status_code == 303 and blocked.headers["location"] == "/security"
    plain = await client.post_form("/account/mfa-policy", {"mfa_policy": "none"})
    assert plain.status_code == 303 and plain.headers["location"] == "/account"


# --- pages by key (issue 20) -------------------------------------------------------------------


def page_link(html: str, rel: str) -> str:
    """The href of the pagination's ``rel`` link (entities undone)."""
    match = re.search(rf'<a[^>]*href="([^"]+)"[^>]*rel="{rel}"', html)
    assert match, rel
    return match.group(1).replace("&amp;", "&")


def emails_in(html: str) -> list[str]:
    return re.findall(r"(osoba\d{4}@example\.com)", html)


async def test_the_people_list_is_walked_by_its_links_without_js_and_as_fragments(client):
    _, account = await owner_signed_in(client)
    await add_people(account, 70)
    for headers in ({}, HTMX):
        for sort in ("name", "-email", "newest"):
            first = await client.get(f"/users?sort={sort}", headers=headers)
            seen, html = list(dict.fromkeys(emails_in(first.text))), first.text
            while 'rel="next"' in html:
                link = page_link(html, "next")
                assert "&after=" in link and f"sort={sort}" in link
                html = (await client.get(link, headers=headers)).text
                seen += list(dict.fromkeys(emails_in(html)))
            assert ("<html" in html) == (not headers)
            assert len(seen) == len(set(seen)) == 70, (sort, headers)
            # Back from the last page by the "previous" links, to the first.
            back = list(dict.fromkeys(emails_in(html)))
            while 'rel="prev"' in html:
                link = page_link(html, "prev")
                html = (await client.get(link, headers=headers)).text
                back = list(dict.fromkeys(emails_in(html))) + back
            assert back == seen, (sort, headers)


async def test_a_bad_people_or_matrix_cursor_is_page_n_never_an_error(client):
    _, account = await owner_signed_in(client)
    await add_people(account, 40)
    second = await client.get("/users?sort=name&page=2", headers=HTMX)
    for cursor in ("x", "%2500", "W10", "A" * 5000, "WyJuYW1lIiwiMSJd", "eyJhIjpbXX0"):
        for key in ("after", "before"):
            answer = await client.get(f"/users?sort=name&page=2&{key}={cursor}", headers=HTMX)
            assert answer.status_code == 200, cursor
            assert emails_in(answer.text) == emails_in(second.text), cursor
    for n in range(120):
        await factories.company(account["id"], name=f"Firma {n % 9} {n:03d}")
    member = (await Membership.select(Membership.id).where(
        (Membership.account == account["id"]) & (Membership.role == "member")).first())["id"]
    url = f"/users/{member}/access"
    first = await client.get(url, headers=HTMX)
    names, html = re.findall(r"Firma \d \d{3}", first.text), first.text
    while 'rel="next"' in html:
        link = page_link(html, "next")
        assert "&after=" in link
        html = (await client.get(link, headers=HTMX)).text
        names += re.findall(r"Firma \d \d{3}", html)
    assert len(set(names)) == 120
    for cursor in ("x", "W10", "A" * 3000):
        answer = await client.get(f"{url}?page=2&after={cursor}", headers=HTMX)
        assert answer.status_code == 200 and "Strona 2 z 3" in answer.text, cursor


# --- the number of SQL queries ------------------------------------------------------------------


async def test_the_list_costs_the_same_queries_for_10_and_for_200_people(client):
    _, account = await owner_signed_in(client)
    await add_people(account, 9)
    url = "/users?q=osoba&sort=name&page=1"
    await client.get(url, headers=HTMX)  # warm up: the session row is touched at most once
    with counting_queries() as ten:
        small = await client.get(url, headers=HTMX)
    await add_people(account, 190, prefix="osoba-b")
    with counting_queries() as two_hundred:
        large = await client.get(url, headers=HTMX)
    with counting_queries() as deep:
        last = await client.get("/users?q=osoba&sort=-email&page=8", headers=HTMX)
    assert f"Osoby 1{DASH}9 z 9" in small.text and f"Osoby 1{DASH}25 z 199" in large.text
    assert "Strona 8 z 8" in last.text
    assert ten["count"] == two_hundred["count"] == deep["count"]
    # The session (and, with no account chosen yet, the first membership), then the plan
    # setting, the count and one page (read by key or from the nearer end).
    assert ten["count"] <= 4, ten


async def test_the_switcher_costs_the_same_queries_for_3_and_for_60_accounts(client):
    identity_id, _ = await owner_signed_in(client)
    for i in range(2):
        await factories.account(identity_id, name=f"Klient {i:02d}")
    await client.get("/accounts", headers=HTMX)
    with counting_queries() as few:
        await client.get("/accounts", headers=HTMX)
    for i in range(2, 60):
        await factories.account(identity_id, name=f"Klient {i:02d}")
    with counting_queries() as many:
        response = await client.get("/accounts", headers=HTMX)
    assert "Klient 47" in response.text
    # The session (two), the counts, one page of accounts, the client accounts delegated
    # through an accounting office, the invitations waiting.
    assert few["count"] == many["count"] <= 6, (few, many)
