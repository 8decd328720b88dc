"""Company accounts (tenants) and the companies inside them."""

from piccolo.columns import Boolean, ForeignKey, OnDelete, Varchar

from portal.tables._base import Base


class Account(Base, tablename="account"):
    public_id = Varchar(length=12, unique=True)  # "ID konta": 12 hex chars
    name = Varchar(length=200)
    nip = Varchar(length=20, default="")
    is_accounting_office = Boolean(default=False)
    street = Varchar(length=200, default="")
    postal_code = Varchar(length=20, default="")
    city = Varchar(length=100, default="")
    country = Varchar(length=2, default="PL")
    mfa_policy = Varchar(length=16, default="none")  # none | any | app | passkey


class Company(Base, tablename="company"):
    # The account never changes (a trigger from the migration refuses it).
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    key = Varchar(length=32, unique=True)
    name = Varchar(length=200)
    nip = Varchar(length=20, default="")
    is_main = Boolean(default=False)
    street = Varchar(length=200, default="")
    postal_code = Varchar(length=20, default="")
    city = Varchar(length=100, default="")
    country = Varchar(length=2, default="PL")
