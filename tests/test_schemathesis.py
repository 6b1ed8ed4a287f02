"""Schemathesis against the app's own OpenAPI spec (issue #8, part 5), in process over ASGI.

Every operation the spec lists is called with generated requests (valid and invalid by the
schema) and must never answer a 5xx (``not_a_server_error``); every 4xx must carry the one
error body ``{"error": {"status", "code", "message", "field"}}``. POST /interactions (the
write) is called three ways per example: as generated, without the API key and with the
right one. Body limits are checked at their edges: JSON over 1 MiB and uploads over 10 MiB
get 413 with the error body, before or while the body is read.

The examples run per operation are printed at the end.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("fastapi", reason="the HTTP API needs fastapi: pip install 'ctxrec[serve]'")
schemathesis = pytest.importorskip("schemathesis", reason="pip install 'ctxrec[test]' (schemathesis)")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from ctxrec.serve.app import MAX_JSON_BYTES, MAX_UPLOAD_BYTES  # noqa: E402

from tests.fuzz_served import API_KEY, close_served, report_counts, served_app  # noqa: E402

CALLS: Counter = Counter()  # examples per operation and generation mode
ERROR_KEYS = {"status", "code", "message", "field"}
#: operations with no input a schema can call invalid (none, or one free-form string in the path)
NO_NEGATIVE = {"GET /health", "GET /catalog", "GET /items/{item_id}", "GET /items/{item_id}/image"}
#: examples per operation and mode (positive, negative): up to 9 operations x 2 x 50
EXAMPLES = 50


@pytest.fixture(scope="module")
def served(tmp_path_factory, request):
    built = served_app(tmp_path_factory)
    yield built
    close_served()
    report_counts(request, "schemathesis", CALLS, f" over {len(CALLS)} operation x mode")


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_asgi("/openapi.json", served.app)


def assert_error_body(response) -> None:
    """A 4xx has the one error body, with its own status."""
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["error"], body
    assert set(body["error"]) == ERROR_KEYS, body
    assert body["error"]["status"] == response.status_code, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def _operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


def test_the_spec_lists_every_endpoint(api_schema):
    ops = {f"{op.method.upper()} {op.path}" for op in _operations(api_schema)}
    assert ops == {"GET /health", "GET /recommend", "GET /items/{item_id}/related", "POST /search", "GET /explain",
                   "POST /interactions", "GET /catalog", "GET /items/{item_id}", "GET /items/{item_id}/image"}


# schemathesis' own pytest loader (``schemathesis.pytest.from_fixture``) fails on pytest 9.2
# (it sets ``request.node._nodeid``), so each operation's strategies drive hypothesis here.
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_operation_answers_without_a_5xx(api_schema, mode):
    """Generated requests valid (positive) and invalid (negative) by the schema: never a 5xx,
    every 4xx with the error body; the write also without its key and with the right one."""
    for op in _operations(api_schema):
        name = f"{op.method.upper()} {op.path}"
        writes = name == "POST /interactions"

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy(schemathesis.GenerationMode(mode)))
        def run(case):
            CALLS[f"{name} [{mode}]"] += 1
            generated = dict(case.headers or {})
            for key in ([None, "absent", API_KEY] if writes else [None]):  # None: as generated
                headers = dict(generated)
                if key is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "x-api-key"}
                    if key != "absent":
                        headers["X-API-Key"] = key
                case.headers = headers
                response = case.call()
                case.validate_response(response, checks=[not_a_server_error])
                assert_error_body(response)
                if key == "absent":  # the key is checked before the body is read
                    assert response.status_code == 401, response.text

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid
            assert mode == "negative" and name in NO_NEGATIVE, name


# ------------------------------------------------------------------ body limits
@pytest.fixture(scope="module")
def client(served):
    return TestClient(served.app, raise_server_exceptions=False)


def _too_large(response, what: str) -> None:
    assert response.status_code == 413, response.text[:300]
    assert_error_body(response)
    assert "limit" in response.json()["error"]["message"] and what in response.json()["error"]["message"]


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes: one event whose location pads it."""
    head = json.dumps({"events": [{"user_id": "u", "item_id": "i", "location": ""}]})
    pad = size - len(head)
    return json.dumps({"events": [{"user_id": "u", "item_id": "i", "location": "x" * pad}]}).encode()


@pytest.mark.parametrize("path", ["/interactions", "/search"])
def test_json_bodies_over_1_mib_get_413(client, path):
    headers = {"content-type": "application/json", "X-API-Key": API_KEY}
    at_limit = _json_of_size(MAX_JSON_BYTES)
    assert len(at_limit) == MAX_JSON_BYTES == 1 << 20
    res = client.post(path, content=at_limit, headers=headers)
    assert res.status_code != 413 and res.status_code < 500, res.text[:300]  # at the limit: read, then judged
    assert_error_body(res)
    _too_large(client.post(path, content=_json_of_size(MAX_JSON_BYTES + 1), headers=headers), "request body")

    def chunks(total):  # no Content-Length: counted while it is read
        sent = 0
        while sent < total:
            part = min(65_536, total - sent)
            sent += part
            yield b" " * part

    _too_large(client.post(path, content=chunks(MAX_JSON_BYTES + 1), headers=headers), "limit")
    res = client.post(path, content=b"{}", headers={**headers, "content-length": "12abc"})
    assert res.status_code == 400 and res.json()["error"]["field"] == "Content-Length"


def test_writes_check_the_key_before_reading_the_body(client):
    """No key: 401 whatever the body (unreadable, invalid, over the limit); a wrong key: 403."""
    for body in (b"\x00\x00\x00", b"{not json", b'{"events": []}', _json_of_size(MAX_JSON_BYTES + 1)):
        res = client.post("/interactions", content=body, headers={"content-type": "application/json"})
        assert res.status_code == 401 and res.json()["error"]["code"] == "missing_api_key", res.text[:300]
        res = client.post("/interactions", content=body, headers={"content-type": "application/json",
                                                                  "X-API-Key": "wrong"})
        assert res.status_code == 403 and res.json()["error"]["code"] == "wrong_api_key", res.text[:300]
    for body in (b"\x00" * 5, b"\x00" * 3, b"{not json"):  # with the key: read, then refused with the body named
        res = client.post("/interactions", content=body, headers={"content-type": "application/json",
                                                                  "X-API-Key": API_KEY})
        assert res.status_code in (400, 422) and res.json()["error"]["field"] == "body", res.text
        assert "JSON" in res.json()["error"]["message"], res.text


@pytest.mark.filterwarnings("ignore:AudioEncoder")  # the 2 MiB upload is no sound: masked, then refused
def test_uploads_over_10_mib_get_413(client):
    assert MAX_UPLOAD_BYTES == 10 << 20
    big = b"\0" * (MAX_UPLOAD_BYTES + 1)
    _too_large(client.post("/search", files={"file": ("big.wav", big, "audio/wav")}), "upload")
    # a multipart body between the two limits is an upload, not a JSON body: read, then judged
    res = client.post("/search", files={"file": ("clip.wav", b"RIFF" + b"\0" * (2 << 20), "audio/wav")})
    assert res.status_code == 422 and res.json()["error"]["field"] == "file", res.text[:300]


def test_ids_with_nul_get_422_not_500(client, served):
    """The stores refuse ids ending with NUL; the API says so first (it answered 500 once they did)."""
    event = {"user_id": served.users[0], "item_id": served.items[0], "time": "2024-05-01T10:00:00"}
    for field in ("user_id", "item_id", "session_id"):
        res = client.post("/interactions", json={"events": [{**event, field: "x\x00"}]}, headers={"X-API-Key": API_KEY})
        assert res.status_code == 422 and res.json()["error"]["field"] == f"events.0.{field}", res.text
        assert "NUL" in res.json()["error"]["message"]
