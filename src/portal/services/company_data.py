"""The data an account and a company share: name, tax id (NIP), address, country.

One set of rules for both forms. Polish NIPs carry a checksum (weights 6,5,7,2,3,4,5,6,7 over
the first nine digits, modulo 11, must equal the tenth); they may be typed with dashes, spaces
or a ``PL`` prefix and are stored as ten digits. Other countries have no checksum here: their
tax id is optional, letters and digits only. Each message is a domain error, so the view maps
it to its field and the catalogue finds it.
"""

from __future__ import annotations

import re

from portal.services.errors import DomainError, InvalidInput

#: The fields an account and a company share (the form field names of DESIGN.md).
FIELDS = ("name", "nip", "street", "postal_code", "city", "country")

#: Countries offered in the forms (ISO 3166-1 alpha-2); the labels are in the template.
COUNTRIES = ("PL", "AT", "BE", "CZ", "DE", "DK", "FR", "GB", "LT", "NL", "SK", "UA", "US")

NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)

_SEPARATORS = re.compile(r"[\s\-.]")
_PL_POSTAL = re.compile(r"^\d{2}-\d{3}$")
_OTHER_POSTAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-]{1,11}$")
_OTHER_TAX_ID = re.compile(r"^[A-Z0-9]{4,20}$")


class NameRequired(DomainError):
    field = "name"
    message = "Podaj nazwę."


class NameTooLong(DomainError):
    field = "name"
    message = "Nazwa może mieć najwyżej 200 znaków."


class NipRequired(DomainError):
    field = "nip"
    message = "Podaj NIP."


class InvalidNip(DomainError):
    field = "nip"
    message = "To nie jest poprawny NIP. Podaj 10 cyfr, np. 526-025-02-74."


class InvalidTaxId(DomainError):
    field = "nip"
    message = "Numer podatkowy może zawierać od 4 do 20 liter i cyfr."


class StreetTooLong(DomainError):
    field = "street"
    message = "Ulica i numer mogą mieć najwyżej 200 znaków."


class InvalidPostalCode(DomainError):
    field = "postal_code"
    message = "Podaj kod pocztowy w formacie 00-000."


class InvalidForeignPostalCode(DomainError):
    field = "postal_code"
    message = "Kod pocztowy może zawierać najwyżej 12 liter, cyfr, spacji i łączników."


class CityTooLong(DomainError):
    field = "city"
    message = "Miejscowość może mieć najwyżej 100 znaków."


class UnknownCountry(DomainError):
    field = "country"
    message = "Wybierz kraj z listy."


class ForbiddenCharacters(DomainError):
    message = "Usuń niedozwolone znaki (np. znaki sterujące)."


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def nip_digits(raw: str) -> str:
    """The input without separators and without a leading ``PL``."""
    text = _SEPARATORS.sub("", raw or "").upper()
    return text[2:] if text.startswith("PL") else text


def nip_is_valid(nip: str) -> bool:
    """A Polish NIP: ten digits whose checksum holds (and not all zeros)."""
    if len(nip) != 10 or not nip.isascii() or not nip.isdigit() or nip == "0" * 10:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(nip, NIP_WEIGHTS, strict=False))
    return total % 11 == int(nip[9])


def clean_tax_id(raw: str, country: str, *, required: bool) -> str:
    """The stored form of a tax id for ``country``; raises the field's domain error."""
    if country == "PL":
        nip = nip_digits(raw)
        if not nip:
            if required:
                raise NipRequired()
            return ""
        if not nip_is_valid(nip):
            raise InvalidNip()
        return nip
    tax_id = _SEPARATORS.sub("", raw or "").upper()
    if tax_id and not _OTHER_TAX_ID.match(tax_id):
        raise InvalidTaxId()
    return tax_id


def clean_postal_code(raw: str, country: str) -> str:
    code = (raw or "").strip()
    if not code:
        return ""
    if country == "PL":
        if len(code) == 5 and code.isascii() and code.isdigit():
            code = f"{code[:2]}-{code[2:]}"
        if not _PL_POSTAL.match(code):
            raise InvalidPostalCode()
        return code
    if not _OTHER_POSTAL.match(code):
        raise InvalidForeignPostalCode()
    return code.upper()


def clean(values: dict[str, str], *, nip_required: bool) -> dict[str, str]:
    """Name, tax id and address as they are stored; InvalidInput lists every field's problem."""
    raw = {field: (values.get(field) or "").strip() for field in FIELDS}
    errors: dict[str, str] = {}

    def fail(error: DomainError, field: str | None = None) -> None:
        errors.setdefault(field or error.field or "form", error.message)

    for field, text in raw.items():
        if _has_control(text):
            fail(ForbiddenCharacters(), field)
    country = (raw["country"] or "PL").upper()
    if country not in COUNTRIES:
        fail(UnknownCountry())
        country = "PL"
    clean_values = {"country": country}
    if not raw["name"]:
        fail(NameRequired())
    elif len(raw["name"]) > 200:
        fail(NameTooLong())
    clean_values["name"] = raw["name"]
    if len(raw["street"]) > 200:
        fail(StreetTooLong())
    clean_values["street"] = raw["street"]
    if len(raw["city"]) > 100:
        fail(CityTooLong())
    clean_values["city"] = raw["city"]
    try:
        clean_values["nip"] = clean_tax_id(raw["nip"][:100], country, required=nip_required)
    except DomainError as error:
        fail(error)
    try:
        clean_values["postal_code"] = clean_postal_code(raw["postal_code"][:100], country)
    except DomainError as error:
        fail(error)
    if errors:
        raise InvalidInput(errors)
    return clean_values
