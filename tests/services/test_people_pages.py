"""The people list pages by key (issue 20): walking forwards by ``after``, backwards by
``before`` and by page number alone gives every person exactly once, in the same order, for
every sort, with ties on the sort key, people without a name or a sign-in, and pending
invitations mixed in; a cursor that does not fit falls back to the page number."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from portal.services import people
from portal.services.paging import encode_cursor
from portal.tables import Identity, Membership
from portal.testing import factories
from tests.conftest import counting_queries
from tests.services.test_accounts import scope_for
from tests.services.test_people import member_of, owned_account

MOMENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def crowded_account(members=56, invitations=7):
    """An account whose people tie on every key: ten called "Anna Nowak", a dozen without a
    name, ten signed in at the same second, most never; ten joined at the same moment; pending
    invitations (no name, no sign-in) among them."""
    owner, account, scope = await owned_account()
    for i in range(members):
        if i < 10:
            profile = {"first_name": "Anna", "last_name": "Nowak"}
        elif i < 22:
            profile = {}
        else:
            profile = {"first_name": f"Osoba {i % 7}", "last_name": "Ślusarz" if i % 2 else "Łoś"}
        identity_id = await factories.identity(f"p{i:03d}@example.com", **profile)
        await factories.membership(identity_id, account["id"], ("member", "admin")[i % 5 == 0])
        if 5 <= i < 15:
            await Identity.update({Identity.last_login_at: MOMENT}).where(
                Identity.id == identity_id)
        elif i % 3 == 0:
            await Identity.update({Identity.last_login_at: MOMENT - timedelta(hours=i)}).where(
                Identity.id == identity_id)
    await Membership.raw(
        "UPDATE membership SET created_at = {} WHERE id IN "
        "(SELECT id FROM membership WHERE account = {} ORDER BY id LIMIT 10)",
        MOMENT, account["id"])
    for i in range(invitations):
        await Membership.raw(
            "INSERT INTO invitation (id, created_at, account, email, role, company_levels, "
            "token_hash, state, expires_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}::jsonb, "
            "{}, 'pending', {})",
            MOMENT, account["id"], f"p{i * 9:03d}-zaproszona@example.com",
            ("member", "owner")[i % 3 == 0], "{}", uuid.uuid4().hex, MOMENT + timedelta(days=7))
    return owner, account, scope


async def walk(scope, sort, **filters):
    """The ids by page number, by ``after`` from the first page, by ``before`` from the last."""
    first = await people.list_page(scope, sort=sort, **filters)
    by_number = [r["id"] for r in first.rows]
    for number in range(2, first.pages + 1):
        by_number += [r["id"] for r in
                      (await people.list_page(scope, sort=sort, page=number, **filters)).rows]
    forwards, listing = [r["id"] for r in first.rows], first
    while listing.next_cursor:
        with counting_queries() as counted:
            listing = await people.list_page(scope, sort=sort, page=listing.page + 1,
                                             after=listing.next_cursor, **filters)
        assert counted["count"] == 2, "read by key: the count and the page, no fallback"
        forwards += [r["id"] for r in listing.rows]
    last = await people.list_page(scope, sort=sort, page=first.pages, **filters)
    backwards, listing = [r["id"] for r in last.rows], last
    while listing.prev_cursor and listing.page > 2:
        with counting_queries() as counted:
            listing = await people.list_page(scope, sort=sort, page=listing.page - 1,
                                             before=listing.prev_cursor, **filters)
        assert counted["count"] == 2, "read by key: the count and the page, no fallback"
        backwards = [r["id"] for r in listing.rows] + backwards
    if listing.page == 2:  # the first page's link has no cursor (it is the first page)
        backwards = [r["id"] for r in first.rows] + backwards
    return first.total, by_number, forwards, backwards


@pytest.mark.parametrize("sort", people.SORTS)
async def test_every_sort_pages_by_key_both_ways_without_skipping_or_repeating(sort):
    scope = (await crowded_account())[2]
    total, by_number, forwards, backwards = await walk(scope, sort)
    assert total == 57 + 7
    assert len(set(by_number)) == len(by_number) == total
    assert forwards == by_number
    assert backwards == by_number


async def test_the_orders_are_the_ones_the_reader_expects():
    _, _, scope = await crowded_account()

    async def rows(sort):
        listing = await people.list_page(scope, sort=sort)
        found = list(listing.rows)
        for number in range(2, listing.pages + 1):
            found += (await people.list_page(scope, sort=sort, page=number)).rows
        return found

    by_name = [r["name"] for r in await rows("name")]
    named = [n for n in by_name if n]
    assert by_name[:len(named)] == named and not any(by_name[len(named):])  # nameless last
    assert named.index("Osoba 1 Łoś") < named.index("Osoba 1 Ślusarz")
    backwards = [r["name"] for r in await rows("-name")]
    assert [n for n in backwards if n] == named[::-1] and not any(backwards[len(named):])
    by_login = await rows("last_login")
    signed_in = [r["last_login_at"] for r in by_login if r["last_login_at"]]
    assert signed_in == sorted(signed_in, reverse=True)
    assert not any(r["last_login_at"] for r in by_login[len(signed_in):])
    emails = [r["email"] for r in await rows("email")]
    assert emails == sorted(emails)
    roles = [r["role"] for r in await rows("role")]
    assert roles == sorted(roles, key=["owner", "admin", "member"].index)


@pytest.mark.parametrize("filters", [{"role": "member"}, {"query": "example"},
                                     {"status": "active"}, {"mfa": "missing"}])
async def test_filtered_lists_page_by_key_too(filters):
    _, _, scope = await crowded_account(members=70)
    if "mfa" in filters:
        scope = replace(scope, account_mfa_policy="app")
    for sort in ("name", "-email", "last_login"):
        total, by_number, forwards, backwards = await walk(scope, sort, **filters)
        assert total > 25 and len(set(by_number)) == total, (sort, total)
        assert forwards == by_number == backwards


async def test_a_cursor_that_does_not_fit_falls_back_to_the_page_number():
    _, _, scope = await crowded_account()
    second = await people.list_page(scope, sort="name", page=2)
    _, theirs, their_scope = await owned_account("obcy@example.com", "Obce Konto")
    await member_of(theirs, "obca@example.com")
    foreign = (await people.list_page(their_scope)).rows[0]["id"]
    first = await people.list_page(scope, sort="name")
    gone = first.rows[-1]["id"]
    for cursor in ("", "garbage", "x" * 5000, "W1tdXQ", encode_cursor("email", [gone]),
                   encode_cursor("name", [foreign]), encode_cursor("name", [uuid.uuid4()]),
                   encode_cursor("name", ["nie-uuid"]), encode_cursor("name", [gone, gone])):
        for key in ("after", "before"):
            listing = await people.list_page(scope, sort="name", page=2, **{key: cursor})
            assert [r["id"] for r in listing.rows] == [r["id"] for r in second.rows], cursor
    # The edge person left: the next page is counted by number instead.
    await Membership.delete().where(Membership.id == gone)
    listing = await people.list_page(scope, sort="name", page=2, after=first.next_cursor)
    assert listing.page == 2 and len(listing.rows) == 25
    assert gone not in [r["id"] for r in listing.rows]


async def test_a_member_pages_by_key_without_invitations_and_sign_ins():
    _, account, _ = await crowded_account()
    member = (await Membership.select(Membership.identity).where(
        (Membership.account == account["id"]) & (Membership.role == "member")).first())
    scope = await scope_for(member["identity"], account, "member")
    total, by_number, forwards, backwards = await walk(scope, "name")
    assert total == 57 and forwards == by_number == backwards
    assert (await people.list_page(scope, sort="last_login")).sort == "email"


async def test_the_sign_in_copied_to_each_membership_follows_the_identity():
    owner, account, _ = await owned_account()
    _, other, _ = await owned_account("drugi@example.com", "Drugie Konto")
    await factories.membership(owner, other["id"], "member")
    await Identity.update({Identity.last_login_at: MOMENT}).where(Identity.id == owner)
    rows = await Membership.raw("SELECT last_login_at FROM membership WHERE identity = {}",
                                owner)
    assert [r["last_login_at"] for r in rows] == [MOMENT, MOMENT]
    joined, _ = await member_of(account, "pozniej@example.com")
    await Identity.update({Identity.last_login_at: MOMENT}).where(Identity.id == joined)
    _, third, _ = await owned_account("trzeci@example.com", "Trzecie Konto")
    await factories.membership(joined, third["id"], "member")  # joins after signing in
    rows = await Membership.raw("SELECT last_login_at FROM membership WHERE identity = {}",
                                joined)
    assert [r["last_login_at"] for r in rows] == [MOMENT, MOMENT]


async def test_a_person_in_many_accounts_gets_the_copy_from_the_background_loop():
    """More than 20 memberships: the sign-in only notes the person (no 21 row rewrites in
    the sign-in's statement); membership.copy_due_last_logins brings every copy up to date,
    and a later sign-in notes them again."""
    from portal.services import membership

    accountant = await factories.identity("ksiegowa@example.com")
    for n in range(21):
        await factories.account(accountant, name=f"Klient {n:02d}", role="member")
    copies = "SELECT DISTINCT last_login_at FROM membership WHERE identity = {}"
    await Identity.update({Identity.last_login_at: MOMENT}).where(Identity.id == accountant)
    assert await Membership.raw(copies, accountant) == [{"last_login_at": None}]
    assert await membership.copy_due_last_logins() == 1
    assert await Membership.raw(copies, accountant) == [{"last_login_at": MOMENT}]
    assert await membership.copy_due_last_logins() == 0
    later = MOMENT + timedelta(minutes=5)
    await Identity.update({Identity.last_login_at: later}).where(Identity.id == accountant)
    await Identity.update({Identity.last_login_at: later}).where(Identity.id == accountant)
    assert await Membership.raw(copies, accountant) == [{"last_login_at": MOMENT}]
    assert await membership.copy_due_last_logins() == 1
    assert await Membership.raw(copies, accountant) == [{"last_login_at": later}]


async def test_every_app_process_runs_the_copy_in_its_background_loop(settings):
    import asyncio

    from portal.services import background

    accountant = await factories.identity("ksiegowa@example.com")
    for n in range(21):
        await factories.account(accountant, name=f"Klient {n:02d}", role="member")
    await Identity.update({Identity.last_login_at: MOMENT}).where(Identity.id == accountant)
    copies = "SELECT DISTINCT last_login_at FROM membership WHERE identity = {}"
    tasks = background.start(settings)
    try:
        for _ in range(100):
            if await Membership.raw(copies, accountant) == [{"last_login_at": MOMENT}]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the background loop never copied the last sign-in")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_without_an_mfa_policy_nobody_misses_a_second_factor_and_nothing_is_read():
    _, _, scope = await crowded_account(members=5, invitations=1)
    with counting_queries() as counted:
        listing = await people.list_page(scope, mfa="missing")
    assert listing.total == 0 and listing.rows == [] and counted["count"] == 0
    assert (await people.list_page(replace(scope, account_mfa_policy="app"),
                                   mfa="missing")).total == 6  # the owner and the five
