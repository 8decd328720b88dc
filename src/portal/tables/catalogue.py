"""Applications of the vendor, and what an account has of them: subscriptions, orders, billing."""

from decimal import Decimal

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique

from portal.tables._base import Base, one_of
from portal.tables.accounts import Account
from portal.tables.identity import Identity


class Application(Base, tablename="application"):
    slug = Varchar(length=50, unique=True)
    name = Varchar(length=100)
    description = Text(default="")
    category = Varchar(length=50, default="")  # a code: finance, office, documents, hr, ...
    product_url = Varchar(length=500, default="")
    open_url = Varchar(length=500, default="")  # where the application starts its sign-in
    has_trial = Boolean(default=False)
    position = Integer(default=0)
    # Added by the customer_panel migration (hand-written, like its constraints):
    included = Boolean(default=False)  # every account has it (help centre, shop, ...)
    shop_url = Varchar(length=500, default="")  # "buy": the product in the online shop


class ApplicationTranslation(Base, tablename="application_translation"):
    """A catalogue entry's name and description in another language than Polish (the
    application's own columns, and the fallback). Added by the catalogue_translations
    migration (hand-written)."""

    application = ForeignKey(Application, on_delete=OnDelete.cascade)
    language = Varchar(length=8)
    name = Varchar(length=100, default="")
    description = Text(default="")
    one_per_language = Unique(["application", "language"])


class Subscription(Base, tablename="subscription"):
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    application = ForeignKey(Application, on_delete=OnDelete.cascade)
    state = Varchar(length=16, default="trial")
    starts_on = Date()
    ends_on = Date(null=True, default=None)
    one_per_product = Unique(["account", "application"])
    known_state = Check(one_of("state", ["trial", "active", "expired"]))


class Order(Base, tablename="customer_order"):
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    number = Varchar(length=40, unique=True)
    status = Varchar(length=16, default="new")
    total = Numeric(digits=(12, 2), default=Decimal(0))
    currency = Varchar(length=3, default="PLN")


class OrderItem(Base, tablename="order_item"):
    order = ForeignKey(Order, on_delete=OnDelete.cascade, index=True)
    application = ForeignKey(Application, on_delete=OnDelete.set_null, null=True)
    description = Varchar(length=200)
    quantity = Integer(default=1)
    unit_price = Numeric(digits=(12, 2), default=Decimal(0))


class BillingProfile(Base, tablename="billing_profile"):
    account = ForeignKey(Account, on_delete=OnDelete.cascade, unique=True)
    name = Varchar(length=200, default="")
    nip = Varchar(length=20, default="")
    street = Varchar(length=200, default="")
    postal_code = Varchar(length=20, default="")
    city = Varchar(length=100, default="")
    country = Varchar(length=2, default="PL")
    email = Varchar(length=320, default="")


class RecentApplication(Base, tablename="recent_application"):
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade)
    account = ForeignKey(Account, on_delete=OnDelete.cascade)
    application = ForeignKey(Application, on_delete=OnDelete.cascade)
    used_at = Timestamptz()
    one_row_per_use = Unique(["identity", "account", "application"])
