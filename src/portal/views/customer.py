"""The customer panel: orders (/orders, /orders/{id}), the account's products (/products) and
its billing data (/billing, edited inline by owners and admins)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import catalogue, company_data, customer
from portal.services.errors import DomainError, NotFound
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import is_htmx, language_of, redirect, render, scope_of
from portal.web.guards import requires_permission


def refuse(error: DomainError) -> None:
    """A row of another account is 404; a rule of who may do what is 403."""
    if isinstance(error, NotFound):
        raise NotFoundException() from error
    if isinstance(error, customer.BillingNotAllowed):
        raise PermissionDeniedException() from error


class OrdersController(Controller):
    path = "/orders"
    guards = [requires_permission]
    opt = {"permission": Permission.ORDERS_VIEW}

    @get("/")
    async def index(self, request: Request, status: FromQuery[str | None] = None) -> Template:
        chosen = customer.parse_status(status)
        return render(request, "orders.html", {
            "title": "Zamówienia",
            "orders": await customer.orders(scope_of(request), chosen),
            "statuses": customer.ORDER_STATUSES,
            "status": chosen,
            "htmx": is_htmx(request),
        }, partial="partials/order_list.html")

    @get("/{order_id:str}")
    async def show(self, request: Request, order_id: FromPath[str]) -> Template:
        try:
            found = await customer.order(scope_of(request), order_id)
        except DomainError as error:
            refuse(error)
            raise
        context = {"title": "Zamówienie", "title_detail": found["number"], "order": found}
        return render(request, "order.html", context,
                      partial="partials/order_detail.html")


class ProductsController(Controller):
    path = "/products"
    guards = [requires_permission]
    opt = {"permission": Permission.PRODUCTS_VIEW}

    @get("/")
    async def index(
        self, request: Request,
        wanted: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> Template:
        chosen = catalogue.parse_state(wanted)
        return render(request, "products.html", {
            "title": "Moje produkty",
            "products": await catalogue.products(scope_of(request), chosen,
                                                 language_of(request)),
            "states": catalogue.STATES,
            "state": chosen,
            "htmx": is_htmx(request),
        }, partial="partials/product_list.html")


class BillingController(Controller):
    path = "/billing"
    guards = [requires_permission]

    async def _page(self, request: Request, *, editing: bool = False, saved: bool = False,
                    values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                    status: int = 200) -> Template:
        scope = scope_of(request)
        billing = await customer.billing(scope)
        return render(request, "billing.html", {
            "title": "Dane do faktury",
            "billing": billing,
            "can_edit": scope.can(Permission.BILLING_EDIT),
            "editing": editing,
            "saved": saved,
            "values": values if values is not None else customer.form_values(billing),
            "errors": errors or {},
            "countries": company_data.COUNTRIES,
            "htmx": is_htmx(request),
        }, partial="partials/billing_form.html" if editing else "partials/billing_card.html",
            status=status)

    @get("/", opt={"permission": Permission.BILLING_VIEW})
    async def show(self, request: Request) -> Template:
        return await self._page(request)

    @get("/edit", opt={"permission": Permission.BILLING_EDIT})
    async def edit(self, request: Request) -> Template:
        return await self._page(request, editing=True)

    @post("/", opt={"permission": Permission.BILLING_EDIT})
    async def save(self, request: Request) -> Response:
        values = await form_values(request, *customer.BILLING_FIELDS)
        try:
            await customer.save_billing(scope_of(request), values, client_of(request))
        except (NotFound, customer.BillingNotAllowed) as error:
            refuse(error)
            raise
        except DomainError as error:
            return await self._page(request, editing=True, values=values,
                                    errors=field_errors(error), status=INVALID)
        if is_htmx(request):
            return await self._page(request, saved=True)
        return redirect(request, "/billing", flash="Zapisano dane do faktury.")
