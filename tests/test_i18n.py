"""The English catalogue covers every Polish source string, and nothing else.

Source strings are Polish and live in two places: ``_("...")`` literals in the Jinja templates
(pages, partials, mail) and the Python messages that templates translate with ``_(value)``
(navigation, error pages, security events, mail subjects, MFA changes, OpenID scope
descriptions, domain errors, validation messages, flash messages and notices, page titles).
These tests need no database.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from unittest import mock

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment
from jinja2.ext import extract_from_ast

import portal.services
from portal import i18n
from portal.api import errors as api_errors
from portal.security import passwords
from portal.services import mail, mfa, oidc, profile
from portal.services.errors import DomainError, InvalidInput
from portal.views.errors import TITLES
from portal.views.navigation import NAVIGATION, NavEntry
from portal.views.security import EVENT_LABELS

PACKAGE = Path(portal.__file__).parent
CATALOGUE = PACKAGE / "locale" / "en" / "LC_MESSAGES" / "messages.po"
TEMPLATES = (
    sorted((PACKAGE / "templates").rglob("*.html"))
    + sorted((PACKAGE / "templates" / "mail").glob("*.txt"))
    + sorted((PACKAGE / "partials").glob("*.html"))
)


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """Overrides the suite's autouse fixture: nothing here touches the database."""


@cache
def english() -> dict[str, str]:
    with CATALOGUE.open("rb") as handle:
        catalog = read_po(handle)
    return {str(m.id): str(m.string) for m in catalog if m.id}


def _where(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


# --- what the templates ask for ---------------------------------------------------------------


@cache
def template_strings() -> dict[str, str]:
    """Every constant ``_("...")`` argument in the templates → where it first appears.

    Jinja's own parser finds them (``_(title)`` and other non-constant arguments are skipped:
    their values come from Python and are collected below)."""
    environment = Environment(autoescape=True)  # only parsed, never rendered
    found: dict[str, str] = {}
    for path in TEMPLATES:
        tree = environment.parse(path.read_text(encoding="utf-8"), name=path.name)
        for lineno, _function, message in extract_from_ast(tree, gettext_functions=("_",)):
            if isinstance(message, str):
                found.setdefault(message, f"{_where(path)}:{lineno}")
    return found


# --- what Python hands to templates -----------------------------------------------------------


def _navigation_labels(entries: tuple[NavEntry, ...]) -> Iterator[str]:
    for entry in entries:
        yield entry.label
        yield from _navigation_labels(entry.children)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def domain_error_messages() -> dict[str, str]:
    for module in pkgutil.iter_modules(portal.services.__path__):
        importlib.import_module(f"portal.services.{module.name}")
    return {
        cls.message: f"{cls.__module__}.{cls.__qualname__}.message"
        for cls in (DomainError, *_subclasses(DomainError))
    }


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


#: Calls whose positional argument at this index is a text the person reads.
SHOWN_ARGUMENTS = {"_screen": 1, "_error_page": 1, "BadClientRedirect": 1}
#: Keyword arguments and dict keys (in views: the template context) that carry such a text.
SHOWN_KEYWORDS = frozenset({"flash", "notice", "message"})
SHOWN_KEYS = frozenset({"title", "message", "notice"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module or function, without those of the functions inside it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def _scope_messages(scope: ast.AST, error_names: frozenset[str]) -> Iterator[tuple[str, int]]:
    """(text, line) of the messages written inline in one function (or at module level)."""
    nodes = list(_own_nodes(scope))
    assigned: dict[str, list[ast.expr]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            assigned.setdefault(node.target.id, []).append(node.value)

    def texts(node: ast.AST | None, seen: frozenset[str] = frozenset()) -> Iterator[ast.Constant]:
        """A constant, both branches of ``a if c else b``, or what a local name is set to."""
        if _string(node):  # not None, not ""
            yield node
        elif isinstance(node, ast.IfExp):
            yield from texts(node.body, seen)
            yield from texts(node.orelse, seen)
        elif isinstance(node, ast.Name) and node.id not in seen:
            for value in assigned.get(node.id, ()):
                yield from texts(value, seen | {node.id})

    # names of dicts handed to InvalidInput(...): ``errors["field"] = "..."`` fills them
    field_maps = {
        node.args[0].id
        for node in nodes
        if isinstance(node, ast.Call)
        and _call_name(node) == "InvalidInput"
        and node.args
        and isinstance(node.args[0], ast.Name)
    }
    for node in nodes:
        found: list[ast.AST | None] = []
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "InvalidInput" and node.args and isinstance(node.args[0], ast.Dict):
                found += node.args[0].values
            elif name in error_names:  # raise SomeDomainError("...")
                found += node.args[:1]
                found += [k.value for k in node.keywords if k.arg == "message"]
            if name in SHOWN_ARGUMENTS and len(node.args) > SHOWN_ARGUMENTS[name]:
                found.append(node.args[SHOWN_ARGUMENTS[name]])
            found += [k.value for k in node.keywords if k.arg in SHOWN_KEYWORDS]
        elif isinstance(node, ast.Dict):
            found += [
                value
                for key, value in zip(node.keys, node.values, strict=True)
                if _string(key) in SHOWN_KEYS
            ]
        elif isinstance(node, ast.Assign):
            if any(
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id in field_maps
                for target in node.targets
            ):
                found.append(node.value)
        for candidate in found:
            for constant in texts(candidate):
                yield constant.value, constant.lineno


def literal_messages() -> dict[str, str]:
    """Constant messages written inline in services and views: field errors for
    ``InvalidInput`` (a dict literal, or a dict filled by ``errors[field] = "..."``), the
    message of ``raise SomeDomainError("...")``, ``flash=``/``notice=`` arguments, ``"title"``,
    ``"message"`` and ``"notice"`` in dicts, and the texts in ``SHOWN_ARGUMENTS``. A local
    name or ``a if c else b`` in those places is followed to its constants."""
    domain_error_messages()  # imports every service, so every DomainError subclass exists
    error_names = frozenset(cls.__name__ for cls in (DomainError, *_subclasses(DomainError)))
    found: dict[str, str] = {}
    files = sorted((PACKAGE / "services").glob("*.py")) + sorted((PACKAGE / "views").glob("*.py"))
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scopes = [tree, *(node for node in ast.walk(tree) if isinstance(node, _SCOPES))]
        for scope in scopes:
            for text, lineno in _scope_messages(scope, error_names):
                found.setdefault(text, f"{_where(path)}:{lineno}")
    return found


def password_messages() -> dict[str, str]:
    """The final texts of ``password_problems``, each zxcvbn warning (and an unknown one)
    with the advice appended. zxcvbn is replaced by a scorer that gives the wanted verdict."""
    verdict = {"score": 0, "feedback": {"warning": ""}}

    def scorer(password, user_inputs=None):
        return verdict

    found: dict[str, str] = {}

    def collect(*args) -> None:
        for message in passwords.password_problems(*args).values():
            found.setdefault(message, "security/passwords.py: password_problems")

    with mock.patch("zxcvbn.zxcvbn", scorer):
        email = "jan.kowalski@example.com"
        collect("", None, email)
        collect("x" * (passwords.MAX_LENGTH + 1), None, email)
        collect("moje jan.kowalski@example.com hasło", None, email)
        for warning in [*passwords._WARNINGS_PL, "a warning no one translated", ""]:
            verdict = {"score": 0, "feedback": {"warning": warning}}
            collect("zielony balkon pełen pomidorów", None, email)
        verdict = {"score": 0, "feedback": {"warning": ""},
                   "sequence": [{"dictionary_name": "user_inputs"}]}
        collect("kowalski2026!", None, email)
        verdict = {"score": 4, "feedback": {"warning": ""}}
        collect("zielony balkon pełen pomidorów", "inne hasło", email)
    return found


def profile_messages() -> dict[str, str]:
    """The final texts of the profile's validation, including the f-strings per field."""
    found: dict[str, str] = {}
    for values in (
        {"first_name": "x" * 101, "last_name": "\x01", "phone": "abc", "language": "de"},
        {"first_name": "\x01", "last_name": "x" * 101},
    ):
        with pytest.raises(InvalidInput) as raised:
            profile.validate(values)
        for message in raised.value.errors.values():
            found.setdefault(message, "services/profile.py: validate")
    return found


@cache
def python_strings() -> dict[str, str]:
    found: dict[str, str] = {}
    for label in _navigation_labels(NAVIGATION):
        found.setdefault(label, "views/navigation.py: NAVIGATION")
    for status, texts in TITLES.items():
        for text in texts:
            found.setdefault(text, f"views/errors.py: TITLES[{status}]")
    for tag, label in EVENT_LABELS.items():
        found.setdefault(label, f"views/security.py: EVENT_LABELS[{tag!r}]")
    for status, (_code, text) in api_errors.STATUSES.items():
        found.setdefault(text, f"api/errors.py: STATUSES[{status}]")
    for text in (*api_errors.OWN_MESSAGES, api_errors.NOT_JSON, api_errors.REFUSED,
                 api_errors.TOO_DEEP, *api_errors.FIELD_MESSAGES.values()):
        found.setdefault(text, "api/errors.py")
    for name, subject in mail.SUBJECTS.items():
        found.setdefault(subject, f"services/mail.py: SUBJECTS[{name!r}]")
    for tag, change in mfa.CHANGES.items():
        found.setdefault(change, f"services/mfa.py: CHANGES[{tag!r}]")
    for scope, description in oidc.SCOPE_DESCRIPTIONS.items():
        found.setdefault(description, f"services/oidc.py: SCOPE_DESCRIPTIONS[{scope!r}]")
    found.setdefault(passwords.BUSY, "security/passwords.py: BUSY")
    for source in (
        domain_error_messages(),
        literal_messages(),
        password_messages(),
        profile_messages(),
    ):
        for text, where in source.items():
            found.setdefault(text, where)
    return found


def _missing(strings: dict[str, str]) -> list[str]:
    table = english()
    return [f"{where}: {text!r}" for text, where in strings.items() if not table.get(text)]


# --- the tests ---------------------------------------------------------------------------------


def test_the_catalogue_is_english_with_plural_forms():
    with CATALOGUE.open("rb") as handle:
        catalog = read_po(handle)
    assert str(catalog.locale) == "en"
    assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"
    assert not [str(m.id) for m in catalog if m.id and m.fuzzy]


def test_template_extraction_finds_the_strings():
    strings = template_strings()
    assert strings["Strona główna"] == "templates/home.html:3"
    assert "Dzień dobry," in strings  # mail templates too
    assert "Nawigacja główna" in strings  # single-quoted, in a partial
    assert len(strings) > 50


def test_inline_messages_are_followed_through_names_and_branches():
    source = """
def view(request, failed):
    message = "A" if failed else "B"
    errors = {}
    errors["name"] = "C"
    if errors:
        raise InvalidInput(errors)
    if failed:
        raise NotFound("D")
    ignored = "not a message"
    return redirect(request, "/", flash=message), _error_page(request, "E"), {"title": "F"}
"""
    function = ast.parse(source).body[0]
    found = {text for text, _line in _scope_messages(function, frozenset({"NotFound"}))}
    assert found == {"A", "B", "C", "D", "E", "F"}


def test_every_template_string_has_an_english_translation():
    assert _missing(template_strings()) == []


def test_every_python_message_has_an_english_translation():
    strings = python_strings()
    assert "Klucze API" in strings and "Usługa niedostępna" in strings
    assert "Imię: najwyżej 100 znaków." in strings
    assert "Takie hasło łatwo odgadnąć. Użyj dłuższego hasła lub kilku przypadkowych słów." in (
        strings
    )
    assert _missing(strings) == []


def test_no_catalogue_entry_is_unused():
    used = template_strings().keys() | python_strings().keys()
    assert sorted(set(english()) - used) == []


def test_the_translator_uses_the_catalogue():
    assert i18n.translator("en")("Strona główna") == "Home"
    assert i18n.translator("en")("Profil") == "Profile"
    assert i18n.translator("pl")("Strona główna") == "Strona główna"
    assert i18n.translator("en")("tekst spoza katalogu") == "tekst spoza katalogu"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-GB,en;q=0.9", "en"),
        ("pl,en;q=0.5", "pl"),
        ("", "pl"),
        (None, "pl"),
        ("de", "pl"),
        ("de,en;q=0.3", "en"),
    ],
)
def test_the_language_follows_accept_language(header, language):
    assert i18n.from_accept_language(header) == language
