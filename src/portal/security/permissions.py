"""Permissions as ``area:subject:action`` and the role → permission map.

Handlers declare the permission they need in ``opt={"permission": ...}``; the guard checks it
against the current membership's role, loaded from the database on every request.
"""

from enum import StrEnum


class Permission(StrEnum):
    ACCOUNT_VIEW = "account:card:view"
    ACCOUNT_EDIT = "account:card:edit"
    COMPANY_VIEW = "account:company:view"
    COMPANY_EDIT = "account:company:edit"
    PEOPLE_VIEW = "account:people:view"
    PEOPLE_MANAGE = "account:people:manage"
    OWNERS_MANAGE = "account:owner:manage"
    API_KEY_MANAGE = "account:api_key:manage"
    APPS_USE = "account:application:use"
    ORDERS_VIEW = "account:order:view"
    PRODUCTS_VIEW = "account:product:view"
    BILLING_VIEW = "account:billing:view"
    BILLING_EDIT = "account:billing:edit"
    SUPPORT_USE = "account:ticket:use"
    AUDIT_VIEW = "account:audit:view"
    #: The client's side of accounting offices: requests, approvals, ending (/account/offices).
    OFFICES_MANAGE = "account:office:manage"
    #: The office's side: asking clients for access, assigning its people (/office/clients).
    OFFICE_CLIENTS_MANAGE = "office:client:manage"
    STAFF = "staff:backoffice:use"


_MEMBER = frozenset(
    {
        Permission.ACCOUNT_VIEW,
        Permission.COMPANY_VIEW,
        Permission.PEOPLE_VIEW,
        Permission.APPS_USE,
        Permission.ORDERS_VIEW,
        Permission.PRODUCTS_VIEW,
        Permission.BILLING_VIEW,
        Permission.SUPPORT_USE,
    }
)
_ADMIN = _MEMBER | {
    Permission.ACCOUNT_EDIT,
    Permission.COMPANY_EDIT,
    Permission.PEOPLE_MANAGE,
    Permission.API_KEY_MANAGE,
    Permission.BILLING_EDIT,
    Permission.AUDIT_VIEW,
    Permission.OFFICES_MANAGE,
    Permission.OFFICE_CLIENTS_MANAGE,
}
_OWNER = _ADMIN | {Permission.OWNERS_MANAGE}

#: An accounting office's person in a client account: a member limited to the assigned
#: companies, who never sees the client's people, invitations, API keys, billing data or MFA
#: policy settings (so PEOPLE_VIEW and BILLING_VIEW are not here).
DELEGATE = "delegate"
_DELEGATE = frozenset(
    {
        Permission.ACCOUNT_VIEW,
        Permission.COMPANY_VIEW,
        Permission.APPS_USE,
        Permission.ORDERS_VIEW,
        Permission.PRODUCTS_VIEW,
        Permission.SUPPORT_USE,
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "owner": frozenset(_OWNER),
    "admin": frozenset(_ADMIN),
    "member": _MEMBER,
    DELEGATE: _DELEGATE,
}


def permissions_for(role: str | None) -> frozenset[Permission]:
    return ROLE_PERMISSIONS.get(role or "", frozenset())
