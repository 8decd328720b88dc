"""Who may act for an account and its companies, and at which level."""

from piccolo.columns import JSONB, ForeignKey, OnDelete, Text, Timestamptz, Varchar
from piccolo.constraints import Check, Unique

from portal.tables._base import Base, one_of
from portal.tables.accounts import Account, Company
from portal.tables.identity import Identity

ROLES = ["owner", "admin", "member"]
LEVELS = ["view", "edit", "manage"]
INVITATION_STATES = ["pending", "accepted", "declined", "expired", "withdrawn"]


class Membership(Base, tablename="membership"):
    # An account keeps at least one owner: the ``membership_keeps_an_owner`` trigger of the
    # people migration refuses the change that would leave none (the account row is its lock).
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, index=True)
    role = Varchar(length=16, default="member")
    # lower("email first last") of the person, for the people search; kept by triggers.
    search_text = Text(default="")
    one_membership_per_identity = Unique(["account", "identity"])
    known_role = Check(one_of("role", ROLES))


class CompanyAccess(Base, tablename="company_access"):
    # The company belongs to the membership's account (trigger ``company_access_same_account``).
    membership = ForeignKey(Membership, on_delete=OnDelete.cascade, index=True)
    company = ForeignKey(Company, on_delete=OnDelete.cascade, index=True)
    level = Varchar(length=16, default="view")
    one_level_per_company = Unique(["membership", "company"])
    known_level = Check(one_of("level", LEVELS))


class Invitation(Base, tablename="invitation"):
    # One pending invitation per (account, lower(email)) and a lookup by lower(email) while
    # pending: partial indexes made by the migrations. The token is shown once (in the mail).
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    email = Varchar(length=320)
    role = Varchar(length=16, default="member")
    company_levels = JSONB(default="{}")  # {company id: level}, a JSON object (CHECK)
    token_hash = Varchar(length=64, unique=True)
    state = Varchar(length=16, default="pending")
    invited_by = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    expires_at = Timestamptz()
    known_state = Check(one_of("state", INVITATION_STATES))
    invited_role = Check(one_of("role", ROLES))
