"""The development mailbox: with PORTAL_DEV and no SMTP server, mail is read here."""

from __future__ import annotations

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from portal.services import mail
from portal.views.rendering import render, settings_of


@get("/dev/mail", opt={"public": True})
async def dev_mail(request: Request) -> Template:
    settings = settings_of(request)
    if not settings.dev or settings.smtp_url:
        raise NotFoundException()
    mails = await mail.recent(settings)
    return render(request, "dev_mail.html", {"title": "Skrzynka deweloperska", "mails": mails})
