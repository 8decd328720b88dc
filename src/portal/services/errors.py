"""Domain errors. A service raises one; the view maps it to a field message or a status."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. ``field`` names the form field the message belongs to, if any."""

    field: str | None = None
    message: str = "Nie udało się wykonać tej operacji."

    def __init__(self, message: str | None = None, field: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if field:
            self.field = field


class NotFound(DomainError):
    message = "Nie znaleziono."


class Forbidden(DomainError):
    """A rule of who may do what said no (403)."""

    message = "Nie masz uprawnień do tej operacji."


class InvalidInput(DomainError):
    """Several field errors at once: ``errors`` maps field → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())), next(iter(errors)))
        self.errors = errors
