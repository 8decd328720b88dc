"""Support tickets and their messages."""

from piccolo.columns import Boolean, ForeignKey, OnDelete, Text, Timestamptz, Varchar
from piccolo.constraints import Check

from portal.tables._base import Base, one_of
from portal.tables.accounts import Account, Company
from portal.tables.identity import Identity


class Ticket(Base, tablename="ticket"):
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    identity = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    company = ForeignKey(Company, on_delete=OnDelete.set_null, null=True)
    subject = Varchar(length=200)
    category = Varchar(length=50, default="other")  # technical, billing, access, licence, other
    status = Varchar(length=16, default="open")
    updated_at = Timestamptz()
    known_status = Check(one_of("status", ["open", "answered", "closed"]))


class TicketMessage(Base, tablename="ticket_message"):
    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    author = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    from_staff = Boolean(default=False)
    body = Text()
