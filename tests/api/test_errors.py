"""The API's errors keep the README's promise (issue 17): one shape for every status, ``fields``
for every input error, messages in the language of Accept-Language (Polish by default), and
the OpenAPI document says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from portal.tables import Company
from tests.api.conftest import bearer, make_key

SHAPE = {"status", "code", "message", "fields"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == SHAPE, body
    assert body["error"]["status"] == response.status_code
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


@pytest.fixture
async def writer(owner):
    identity_id, account = owner
    return await make_key(identity_id, account, scopes=("read", "write"))


@pytest.mark.parametrize(("body", "field", "polish", "english"), [
    ({}, "name", "To pole jest wymagane.", "This field is required."),
    ({"name": "x" * 10_000}, "name", "Najwyżej 200 zn.", "At most 200 characters."),
    ({"name": "Firma", "account": "y"}, "account", "Nieznane pole.", "Unknown field."),
    ({"name": ""}, "name", "To pole nie może być puste.", "This field must not be empty."),
    ({"name": 5}, "name", "Oczekiwano wartości typu string.", "Expected a value of type string."),
])
async def test_schema_errors_name_the_field_in_the_callers_language(
        client, writer, body, field, polish, english):
    polish_answer = await client.post("/api/v1/companies", json=body, headers=bearer(writer))
    assert polish_answer.status_code == 400
    error = error_of(polish_answer)
    assert error["code"] == "bad_request"
    assert error["fields"] == {field: polish}
    assert error["message"] == "Nieprawidłowe żądanie: szczegóły w „fields”."
    english_answer = await client.post("/api/v1/companies", json=body,
                                       headers={**bearer(writer), **EN})
    error = error_of(english_answer)
    assert error["fields"] == {field: english}
    assert error["message"] == "Bad request: see “fields”."
    assert await Company.count() == 1  # only the main company


async def test_a_body_that_is_not_json_and_a_bad_query_parameter_are_fields_too(client, writer):
    broken = await client.post("/api/v1/companies", content=b'{"name": ',
                               headers={**bearer(writer), "Content-Type": "application/json"})
    error = error_of(broken)
    assert broken.status_code == 400
    assert error["fields"] == {"body": "Treść żądania nie jest poprawnym dokumentem JSON."}
    page = await client.get("/api/v1/companies?page=x", headers=bearer(writer))
    assert page.status_code == 400
    assert error_of(page)["fields"] == {"page": "Oczekiwano wartości typu integer."}
    zero = await client.get("/api/v1/companies?page=0", headers={**bearer(writer), **EN})
    assert error_of(zero)["fields"] == {"page": "The smallest allowed value is 1."}


async def test_a_rule_a_service_applies_is_a_422_with_fields_in_the_callers_language(
        client, writer):
    response = await client.post("/api/v1/companies", json={"name": "X", "nip": "123"},
                                 headers={**bearer(writer), **EN})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["fields"]["nip"].startswith("This is not a valid NIP")


async def test_every_other_status_has_the_same_shape_and_language(client, owner, app):
    identity_id, account = owner
    reader = await make_key(identity_id, account)
    cases = [
        (await client.get("/api/v1/companies"), 401, "unauthorized",
         "Potrzebny jest klucz API (nagłówek Authorization: Bearer …)."),
        (await client.get("/api/v1/companies", headers=bearer("pak_000000000000_" + "x" * 43)),
         401, "unauthorized", "Klucz API jest nieprawidłowy, wygasł albo został unieważniony."),
        (await client.post("/api/v1/companies", json={"name": "N"}, headers=bearer(reader)),
         403, "forbidden", "Ten klucz API nie ma uprawnienia „write”."),
        (await client.get("/api/v1/nothing-here", headers=bearer(reader)), 404, "not_found",
         "Nie znaleziono."),
        (await client.get("/api/v1/companies/00000000-0000-0000-0000-000000000000",
                          headers=bearer(reader)), 404, "not_found", "Nie znaleziono."),
        (await client.delete("/api/v1/companies", headers=bearer(reader)), 405,
         "method_not_allowed", "Ta ścieżka nie obsługuje tej metody."),
    ]
    for response, status, code, message in cases:
        assert response.status_code == status, response.text
        error = error_of(response)
        assert (error["code"], error["message"], error["fields"]) == (code, message, {})
    english = await client.get("/api/v1/nothing-here", headers={**bearer(reader), **EN})
    assert error_of(english)["message"] == "Not found."
    settings = app.state.settings
    app.state.settings = replace(settings, api_rate_per_minute=1)
    try:
        await client.get("/api/v1/account", headers=bearer(reader))
        limited = await client.get("/api/v1/account", headers={**bearer(reader), **EN})
    finally:
        app.state.settings = settings
    assert limited.status_code == 429
    error = error_of(limited)
    assert error["code"] == "rate_limited"
    wait = limited.headers["retry-after"]
    assert error["message"] == f"Too many requests. Try again in {wait} s."


async def test_an_unreachable_database_is_a_503_in_the_same_shape(client, owner, monkeypatch):
    from portal.api import controllers
    from portal.views import errors

    identity_id, account = owner
    reader = await make_key(identity_id, account)

    async def down(*args, **kwargs):
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(controllers.accounts, "card", down)
    monkeypatch.setattr(errors.db, "forget_connections", lambda: None)
    response = await client.get("/api/v1/account", headers=bearer(reader))
    assert response.status_code == 503
    error = error_of(response)
    assert (error["code"], error["fields"]) == ("unavailable", {})
    assert error["message"] == "Usługa chwilowo niedostępna. Spróbuj ponownie za kilka sekund."


async def test_the_openapi_document_describes_the_one_error_shape_for_every_status(client):
    schema = (await client.get("/api/v1/schema/openapi.json")).json()
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body_name = error["properties"]["error"]["$ref"].rsplit("/", 1)[1]
    body = schema["components"]["schemas"][body_name]
    assert set(body["properties"]) == SHAPE
    assert "fields" in schema["info"]["description"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "405", "429", "503"):
                response = operation["responses"][status]
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Error"), (method, path, status, ref)
