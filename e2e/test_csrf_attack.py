"""The cookie-tossing CSRF attack in a real browser: a page on another port of the portal's
host plants the attacker's own valid CSRF token as the owner's cookie and auto-submits
"add a person as owner". The portal refuses it, nothing is added, and the owner's own
forms keep working."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.async_api import Page, expect

from e2e.data import Person
from e2e.pages import LoginPage, PeoplePage
from e2e.server import Server
from portal.tables import Invitation

ATTACK_PAGE = """<!doctype html><html lang="en"><head><title>Win a prize</title></head><body>
<form id="f" method="post" action="{portal}/users/new">
<input name="email" value="napastnik@example.com"><input name="role" value="owner">
<input name="_csrf_token" value="{token}"></form>
<script>document.getElementById("f").submit();</script></body></html>"""


@pytest.fixture
def attacker_site(server: Server) -> Iterator[str]:
    """The attacker's server on another port of the same host (cookies ignore ports)."""
    with httpx.Client(base_url=server.base_url) as client:
        client.get("/login")
        token = client.cookies["csrftoken"]  # the attacker's own, valid token
    host = server.base_url.split("//")[1].split(":")[0]
    body = ATTACK_PAGE.format(portal=server.base_url, token=token).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Set-Cookie", f"csrftoken={token}; Path=/; SameSite=Lax")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


async def test_a_page_on_another_port_cannot_add_an_owner(page: Page, owner: Person,
                                                          attacker_site: str):
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto(attacker_site)
    await expect(page.get_by_role("heading", name="Brak dostępu")).to_be_visible()
    assert await Invitation.count().where(Invitation.email == "napastnik@example.com") == 0

    # The owner's own forms still work, although the planted cookie replaced theirs.
    people = await PeoplePage(page).open()
    await people.add.click()
    await people.add_form.get_by_label("E-mail", exact=True).fill("wspolnik@example.com")
    await people.add_form.get_by_role("button", name="Dodaj osobę", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Wysłaliśmy zaproszenie")
    assert await Invitation.count().where(Invitation.email == "wspolnik@example.com") == 1
