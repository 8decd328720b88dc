"""Piccolo tables, one module per domain. Import them all from here."""

from portal.tables.access import CompanyAccess, Invitation, Membership
from portal.tables.accounts import Account, Company
from portal.tables.audit import AuditEvent
from portal.tables.catalogue import (
    Application,
    ApplicationTranslation,
    BillingProfile,
    Order,
    OrderItem,
    RecentApplication,
    Subscription,
)
from portal.tables.identity import (
    Identity,
    OneTimeToken,
    Passkey,
    Profile,
    RecoveryCode,
    Session,
    Throttle,
    WebauthnChallenge,
)
from portal.tables.keys import ApiKey
from portal.tables.mail import OutboxEmail
from portal.tables.oauth import (
    LogoutNotice,
    OAuthClient,
    OAuthCode,
    OAuthConsent,
    OAuthGrant,
    OAuthLogin,
    OAuthRefreshToken,
    OAuthSigningKey,
)
from portal.tables.offices import Delegation, DelegationAssignment, DelegationCompany
from portal.tables.support import Ticket, TicketMessage

ALL_TABLES = [
    Identity,
    Profile,
    Session,
    OneTimeToken,
    RecoveryCode,
    Passkey,
    WebauthnChallenge,
    Throttle,
    Account,
    Company,
    Membership,
    CompanyAccess,
    Invitation,
    ApiKey,
    Application,
    ApplicationTranslation,
    Subscription,
    Order,
    OrderItem,
    BillingProfile,
    RecentApplication,
    Ticket,
    TicketMessage,
    AuditEvent,
    OutboxEmail,
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthRefreshToken,
    OAuthConsent,
    OAuthSigningKey,
    OAuthLogin,
    Delegation,
    DelegationCompany,
    DelegationAssignment,
    LogoutNotice,
]

__all__ = [table.__name__ for table in ALL_TABLES] + ["ALL_TABLES"]
