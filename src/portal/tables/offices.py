"""Accounting offices: a client account's delegation of access to an office account.

A delegation links no data: it is a permission the client gives (and can end) for the office's
people to act in the client's account. ``delegation_company`` is the client's ceiling per
company; ``delegation_assignment`` is the office's choice of its own people, per company, at a
level within that ceiling. The tables, their constraints and triggers are made by the
hand-written migration ``2026-12-03T11:00`` (offices); these classes are how queries name them.
"""

from piccolo.columns import ForeignKey, OnDelete, Timestamptz, Varchar

from portal.tables._base import Base
from portal.tables.access import Membership
from portal.tables.accounts import Account, Company
from portal.tables.identity import Identity

DELEGATION_STATES = ["pending", "approved", "refused", "ended"]
#: States that hold the one place per office and client (partial unique index).
ACTIVE_STATES = ["pending", "approved"]


class Delegation(Base, tablename="delegation"):
    office = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    # NULL when the request named no account (or one that did not match): it is kept and
    # shown to the office like any other request, so the office learns nothing from it.
    client = ForeignKey(Account, on_delete=OnDelete.cascade, null=True, index=True)
    asked_for = Varchar(length=400, default="")  # what the office typed: ID konta or NIP
    state = Varchar(length=16, default="pending")
    level = Varchar(length=16, default="view")  # the highest level asked for
    ends_at = Timestamptz(null=True, default=None)
    requested_by = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    decided_by = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    decided_at = Timestamptz(null=True, default=None)
    ended_by = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    ended_at = Timestamptz(null=True, default=None)


class DelegationCompany(Base, tablename="delegation_company"):
    """A company of the client in the delegation: the level asked, then the client's ceiling."""

    delegation = ForeignKey(Delegation, on_delete=OnDelete.cascade, index=True)
    company = ForeignKey(Company, on_delete=OnDelete.cascade, index=True)
    level = Varchar(length=16, default="view")


class DelegationAssignment(Base, tablename="delegation_assignment"):
    """One of the office's people on one delegated company, at a level within the ceiling."""

    delegation = ForeignKey(Delegation, on_delete=OnDelete.cascade, index=True)
    # A membership of the office account: removing the person from the office removes this.
    membership = ForeignKey(Membership, on_delete=OnDelete.cascade, index=True)
    company = ForeignKey(Company, on_delete=OnDelete.cascade, index=True)
    level = Varchar(length=16, default="view")
