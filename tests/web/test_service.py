"""The login service (federation.web.create_app): every endpoint, through Starlette's test client."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from webenv import ADMIN_KEY, ADMIN_MAPPING, APP, REGISTRATION_KEY, WebEnv

from federation.errors import ConfigError
from federation.storage import MemoryStore, NewUser, SQLStore
from federation.web import MAX_OPEN_SIGN_INS, SIGN_IN_MAX_AGE, create_app

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def set_cookies(response: Any) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")][1:]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


def browser_login(env: WebEnv, redirect_to: str | None = None, client: TestClient | None = None) -> Any:
    """The sign-in flow: /login -> the mock's /authorize -> /callback; the callback's response."""
    client = client or env.client
    params = {"redirect_to": redirect_to} if redirect_to is not None else {}
    start = client.get("/login/mock", params=params)
    assert start.status_code == 302, start.text
    answer = env.idp.client().get(start.headers["location"])
    assert answer.status_code == 302
    callback = answer.headers["location"]
    assert callback.startswith(APP + "/callback/mock?")
    return client.get(callback.removeprefix(APP))


def csrf_headers(env: WebEnv) -> dict[str, str]:
    token = env.client.cookies.get("__Host-federation_csrf")
    assert token
    return {"X-CSRF-Token": token, "Origin": APP}


# -- POST /token ---------------------------------------------------------------------------


def test_token_exchange_returns_an_rfc6749_body(web_env: WebEnv) -> None:
    external = web_env.login_token("alice", email="alice@example.test")
    response = web_env.client.post(
        "/token", data={"grant_type": EXCHANGE, "subject_token": external, "subject_token_type": ID_TOKEN}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["refresh_token"]
    me = web_env.client.get("/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "alice@example.test"
    assert me.json()["kind"] == "session"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": EXCHANGE}, "invalid_request"),
        ({"grant_type": EXCHANGE, "subject_token": "x", "subject_token_type": "saml2"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "not-a-token"}, "invalid_grant"),
    ],
)
def test_token_errors_are_rfc6749_section_5_2(web_env: WebEnv, form: dict[str, str], error: str) -> None:
    response = web_env.client.post("/token", data=form)
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert body["code"]


@pytest.mark.parametrize(
    ("kind", "declared", "status"),
    [
        ("id", "id_token", 200),
        ("access", "access_token", 200),
        ("id", "jwt", 200),
        ("access", "jwt", 200),
        ("id", "access_token", 400),
        ("access", "id_token", 400),
    ],
)
def test_a_subject_token_must_be_the_type_it_is_declared(
    make_web_env: Any, kind: str, declared: str, status: int
) -> None:
    """RFC 8693 §2.1: subject_token_type says what the token is; a token of another kind is
    refused (invalid_request, wrong_token_type) and nobody is logged in."""
    env = make_web_env()
    token = env.idp.mint(sub="alice", token_type=kind)
    response = env.client.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": token,
            "subject_token_type": f"urn:ietf:params:oauth:token-type:{declared}",
        },
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"] == "invalid_request"
        assert response.json()["code"] == "wrong_token_type"
        assert env.bridge.store.users() == []
        failed = [e for e in env.audit if e.name == "login_failed"]
        assert [e.detail["reason"] for e in failed] == ["wrong_token_type"]  # audited like any refusal


def test_a_bad_subject_token_is_invalid_request_with_its_code_and_never_echoed(web_env: WebEnv) -> None:
    forged = web_env.idp.mint(sub="alice")[:-8] + "AAAAAAAA"
    response = web_env.client.post(
        "/token", data={"grant_type": EXCHANGE, "subject_token": forged, "subject_token_type": ID_TOKEN}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["code"] == "bad_signature"
    assert forged not in response.text and forged.split(".")[1] not in response.text


def test_a_repeated_parameter_is_refused(web_env: WebEnv) -> None:
    response = web_env.client.post(
        "/token",
        content="grant_type=refresh_token&refresh_token=a&refresh_token=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_refresh_rotates_and_a_reused_token_fails_after_the_grace(web_env: WebEnv) -> None:
    first = web_env.exchange("alice")
    response = web_env.client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert "issued_token_type" not in second
    web_env.clock.advance(60)
    reused = web_env.client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["code"] == "refresh_reused"


def test_keys_down_is_503_temporarily_unavailable(make_web_env: Any) -> None:
    env = make_web_env()
    env.idp.outage(status=503)
    response = env.client.post(
        "/token",
        data={"grant_type": EXCHANGE, "subject_token": env.login_token(), "subject_token_type": ID_TOKEN},
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.json()["code"] == "keyset_unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_a_damaged_user_row_is_503_with_its_own_code(make_web_env: Any, tmp_path: Any) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/users.db")
    env = make_web_env(store=store)
    env.exchange("alice")  # provisioned
    with store.engine.begin() as conn:  # another program leaves text that is no JSON
        conn.exec_driver_sql(f"UPDATE {store.users_table.name} SET roles = 'admin, ops'")
    token = env.login_token("alice")
    response = env.client.post(
        "/token", data={"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ID_TOKEN}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.json()["code"] == "corrupt_record"
    assert "roles" in response.json()["error_description"]
    assert "admin, ops" not in response.text
    store.close()


# -- request bodies (every POST endpoint reads its body the same way) -----------------------

FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON_BODY = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "description"),
    [
        (b"grant_type=refresh_token&grant_type=password", FORM, "the parameter 'grant_type' is repeated"),
        (
            b"grant_type=refresh_token&refresh_token=a&refresh_token=a",
            FORM,
            "the parameter 'refresh_token' is repeated",
        ),
        (b"grant_type=\xff", FORM, "the body is not UTF-8"),
        (
            b'{"grant_type": "refresh_token", "grant_type": "password"}',
            JSON_BODY,
            "the body must be a JSON object of strings (duplicate member name)",
        ),
        (b"{", JSON_BODY, "the body must be a JSON object of strings (invalid JSON)"),
        (
            b'["grant_type"]',
            JSON_BODY,
            "the body must be a JSON object of strings (the top level is an array, not an object)",
        ),
        (
            b'{"grant_type": NaN}',
            JSON_BODY,
            "the body must be a JSON object of strings (non-standard JSON literal)",
        ),
        (
            b'{"grant_type": {"a": "b"}}',
            JSON_BODY,
            "the body must be a JSON object of strings (JSON nested too deeply)",
        ),
        (b'{"grant_type": 5}', JSON_BODY, "the body must be a JSON object of strings"),
        (
            b"grant_type=refresh_token",
            {"content-type": "text/plain"},
            "the body must be application/x-www-form-urlencoded or application/json",
        ),
        (b"a=" + b"b" * (64 * 1024), FORM, "the request body is too large"),
    ],
)
def test_a_body_that_is_not_one_value_per_parameter_is_refused(
    web_env: WebEnv, body: bytes, headers: dict[str, str], description: str
) -> None:
    """RFC 6749 §3.1: a parameter is never sent twice; a JSON body no looser than a form."""
    response = web_env.client.post("/token", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
        "code": "invalid_request",
    }


def test_a_json_body_of_strings_is_read_as_a_form(web_env: WebEnv) -> None:
    external = web_env.login_token("jason")
    body = {"grant_type": EXCHANGE, "subject_token": external, "subject_token_type": ID_TOKEN}
    response = web_env.client.post("/token", json=body)
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


def test_a_chunked_body_is_read_only_up_to_the_bound(web_env: WebEnv) -> None:
    """No Content-Length (chunked transfer): the service stops reading past 64 KiB and answers
    400, instead of buffering whatever the client keeps sending."""
    chunk = b"a" * 8192
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        assert pulled < 1000, "the service read 8 MiB of a body it should have refused"
        return {"type": "http.request", "body": chunk, "more_body": True}  # never ends

    sent = _asgi_post(web_env.app, receive)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert b"the request body is too large" in b"".join(m.get("body", b"") for m in sent[1:])
    assert pulled == 64 * 1024 // len(chunk) + 1  # the first chunk past the bound, and no more


def _asgi_post(app: Any, receive: Any, headers: list[tuple[bytes, bytes]] | None = None) -> list[Any]:
    import asyncio

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/token",
        "raw_path": b"/token",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"app.example.test"), (b"content-type", b"application/x-www-form-urlencoded")]
        + (headers or []),
        "client": ("127.0.0.1", 50000),
        "server": ("app.example.test", 443),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=20))
    return sent


def test_a_body_that_never_arrives_is_answered_not_waited_on(
    web_env: WebEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers, then nothing (or a byte a second): the connection was held for ever."""
    import asyncio

    from federation.web import _service

    monkeypatch.setattr(_service, "BODY_TIMEOUT", 0.2)
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"grant_type=", "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    sent = _asgi_post(web_env.app, receive)
    assert sent[0]["status"] == 400
    assert b"request_timeout" in b"".join(m.get("body", b"") for m in sent[1:])


def test_a_client_gone_mid_body_is_no_application_error(
    web_env: WebEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette's ClientDisconnect escaped the body reader: an ASGI error with its
    traceback for every client that hung up, which anyone can cause."""
    messages = iter(
        [{"type": "http.request", "body": b"grant_type=", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    sent = _asgi_post(web_env.app, receive)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_the_client_address_reads_every_forwarded_line_of_a_trusted_proxy(make_web_env: Any) -> None:
    """A proxy that adds its own X-Forwarded-For line (HAProxy's forwardfor) put the real
    client in the second line, and only the first was read: the lockout address was the one
    the client wrote itself."""
    from starlette.requests import Request

    env = make_web_env(web={"trusted_proxies": ["127.0.0.1"]})
    service = env.app.state.federation
    scope = {
        "type": "http",
        "headers": [(b"x-forwarded-for", b"203.0.113.200"), (b"x-forwarded-for", b"198.51.100.12")],
        "client": ("127.0.0.1", 50000),
    }
    assert service._client_address(Request(scope)) == "198.51.100.12"


# -- POST /revoke --------------------------------------------------------------------------


def test_revoke_is_always_200_and_the_token_is_refused_after(web_env: WebEnv) -> None:
    session = web_env.exchange("alice")
    assert web_env.client.post("/revoke", data={"token": session["access_token"]}).status_code == 200
    assert web_env.client.post("/revoke", data={"token": session["access_token"]}).status_code == 200
    garbage = web_env.client.post("/revoke", data={"token": "garbage", "token_type_hint": "x"})
    assert garbage.status_code == 200
    me = web_env.client.get("/me", headers=bearer(session["access_token"]))
    assert me.status_code == 401
    assert me.json()["error"] == "revoked"
    assert 'error="invalid_token"' in me.headers["www-authenticate"]


def test_revoke_needs_a_token(web_env: WebEnv) -> None:
    response = web_env.client.post("/revoke", data={})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_revoking_a_refresh_token_ends_its_session(web_env: WebEnv) -> None:
    session = web_env.exchange("alice")
    assert web_env.client.post("/revoke", data={"token": session["refresh_token"]}).status_code == 200
    refreshed = web_env.client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 400


# -- POST /register ------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong", REGISTRATION_KEY[:-1], REGISTRATION_KEY + "x"])
def test_register_needs_the_registration_key(web_env: WebEnv, key: str | None) -> None:
    headers = {"X-Registration-Key": key} if key is not None else {}
    response = web_env.client.post("/register", data={"token": web_env.login_token("bob")}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "registration_key"
    assert web_env.bridge.store.find_login(web_env.idp.issuer, "bob") is None  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["registration_key", "admin_key"])
def test_a_short_extra_key_is_a_config_error(make_web_env: Any, tmp_path: Any, name: str) -> None:
    """A one-character admin key loaded, and 62 guesses deleted any user."""
    from federation.errors import ConfigError

    short = tmp_path / "key"
    short.write_text("7" * 31)
    with pytest.raises(ConfigError) as caught:
        make_web_env(web={name: {"file": str(short)}})
    assert caught.value.field == f"web.{name}" and "at least 32 bytes" in str(caught.value)
    short.write_text("7" * 32)
    assert make_web_env(web={name: {"file": str(short)}}).client.get("/healthz").status_code == 200


def test_register_with_an_external_token_creates_then_logs_in(web_env: WebEnv) -> None:
    headers = {"X-Registration-Key": REGISTRATION_KEY}
    first = web_env.client.post("/register", data={"token": web_env.login_token("bob")}, headers=headers)
    assert first.status_code == 201
    assert first.json()["access_token"]
    again = web_env.client.post("/register", data={"token": web_env.login_token("bob")}, headers=headers)
    assert again.status_code == 200
    assert again.json()["user"]["id"] == first.json()["user"]["id"]


def test_register_and_password_grant_for_local_accounts(make_web_env: Any) -> None:
    env = make_web_env(local_accounts={"min_password_length": 12})
    headers = {"X-Registration-Key": REGISTRATION_KEY}
    made = env.client.post(
        "/register",
        json={"username": "carol", "email": "carol@example.test", "password": "a long passphrase"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    login = env.client.post(
        "/token", data={"grant_type": "password", "username": "carol", "password": "a long passphrase"}
    )
    assert login.status_code == 200
    wrong = env.client.post(
        "/token", data={"grant_type": "password", "username": "carol", "password": "not the passphrase"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["code"] == "invalid_credentials"
    short = env.client.post("/register", json={"username": "dave", "password": "short"}, headers=headers)
    assert short.status_code == 403
    assert "password" not in short.json()["detail"].lower() or "short" not in short.text


def test_register_by_password_without_local_accounts_is_a_bad_request(web_env: WebEnv) -> None:
    headers = {"X-Registration-Key": REGISTRATION_KEY}
    for send in (
        {"data": {"username": "mallory", "password": "a long passphrase"}},
        {"json": {"username": "mallory", "password": "a long passphrase"}},
    ):
        response = web_env.client.post("/register", headers=headers, **send)  # type: ignore[arg-type]
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
        assert "local_accounts" not in response.text  # the client is not told the configuration


# -- DELETE /users/... ----------------------------------------------------------------------


def test_delete_me_disables_the_account_and_refuses_its_tokens(web_env: WebEnv) -> None:
    session = web_env.exchange("alice")
    other = web_env.exchange("alice")
    response = web_env.client.delete("/users/me", headers=bearer(session["access_token"]))
    assert response.status_code == 200
    assert response.json()["action"] == "disable"
    for token in (session["access_token"], other["access_token"]):
        assert web_env.client.get("/me", headers=bearer(token)).status_code in (401, 403)
    again = web_env.client.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": web_env.login_token("alice"),
            "subject_token_type": ID_TOKEN,
        },
    )
    assert again.status_code == 400
    assert again.json()["code"] == "account_disabled"


def test_delete_user_with_the_admin_key(web_env: WebEnv) -> None:
    session = web_env.exchange("alice")
    user_id = web_env.client.get("/me", headers=bearer(session["access_token"])).json()["user"]["id"]
    wrong = web_env.client.delete(f"/users/{user_id}", headers={"X-Admin-Key": ADMIN_KEY + "x"})
    assert wrong.status_code == 403
    nobody = web_env.client.delete(f"/users/{user_id}")
    assert nobody.status_code == 401
    assert nobody.json()["error"] == "missing_token"
    assert nobody.headers["www-authenticate"] == 'Bearer realm="federation"'
    done = web_env.client.delete(f"/users/{user_id}", headers={"X-Admin-Key": ADMIN_KEY})
    assert done.status_code == 200
    assert web_env.client.get("/me", headers=bearer(session["access_token"])).status_code in (401, 403)
    assert web_env.client.delete("/users/no-such-user", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 404


def test_an_admin_key_sent_where_none_is_configured_says_so(make_web_env: Any) -> None:
    """It said 'the admin key is not valid', as if one existed to be mistyped."""
    env = make_web_env(web={"admin_key": None})
    session = env.exchange("alice")
    user_id = env.client.get("/me", headers=bearer(session["access_token"])).json()["user"]["id"]
    refused = env.client.delete(f"/users/{user_id}", headers={"X-Admin-Key": ADMIN_KEY})
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "admin_key",
        "detail": "no admin key is configured (web.admin_key): deleting another user needs the admin role",
    }
    assert env.client.get("/me", headers=bearer(session["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/no-such-endpoint", 404, "not_found"),
        ("POST", "/users/me/extra", 404, "not_found"),
        ("GET", "/token", 405, "method_not_allowed"),
        ("PUT", "/me", 405, "method_not_allowed"),
    ],
)
def test_routing_refusals_have_the_one_error_shape(
    web_env: WebEnv, method: str, path: str, status: int, error: str
) -> None:
    """Starlette answered these in plain text ('Not Found'), unlike every other refusal."""
    answer = web_env.client.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["detail"]
    assert answer.headers["cache-control"] == "no-store"
    if status == 405:
        assert answer.headers["allow"]  # which methods the endpoint does take, as before


def test_delete_user_by_role(make_web_env: Any) -> None:
    env = make_web_env(mapping=ADMIN_MAPPING)
    admin = env.exchange("root", groups=["admins"])
    plain = env.exchange("alice")
    alice_id = env.client.get("/me", headers=bearer(plain["access_token"])).json()["user"]["id"]
    refused = env.client.delete(f"/users/{alice_id}", headers=bearer(plain["access_token"]))
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_role"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]  # RFC 6750 §3.1
    done = env.client.delete(f"/users/{alice_id}", headers=bearer(admin["access_token"]))
    assert done.status_code == 200, done.text


# -- GET /sso ---------------------------------------------------------------------------------


def test_sso_logs_in_sets_the_cookie_and_redirects(web_env: WebEnv) -> None:
    token = web_env.idp.mint(sub="alice", jti="sso-1")
    response = web_env.client.get("/sso", params={"token": token, "redirect_to": "/welcome?x=1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/welcome?x=1"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    cookies = set_cookies(response)
    assert "__Host-federation_session" in cookies
    me = web_env.client.get("/me")
    assert me.status_code == 200
    assert me.json()["kind"] == "session"


def test_sso_tokens_are_single_use(web_env: WebEnv) -> None:
    token = web_env.idp.mint(sub="alice", jti="sso-once")
    assert web_env.client.get("/sso", params={"token": token}).status_code == 303
    web_env.client.cookies.clear()
    replay = web_env.client.get("/sso", params={"token": token})
    assert replay.status_code == 401
    assert replay.json()["error"] == "url_token_replayed"
    assert "set-cookie" not in replay.headers


@pytest.mark.parametrize("jti", ["spent-everywhere", None])
def test_a_token_becomes_a_session_once_whichever_door(web_env: WebEnv, jti: str | None) -> None:
    """A /sso URL token travels in history and logs: spent there, it was still exchanged at
    /token or /register for a session with a sliding refresh token."""
    registration = {"X-Registration-Key": REGISTRATION_KEY}
    token = web_env.idp.mint(sub="alice", jti=jti)
    assert web_env.client.get("/sso", params={"token": token}).status_code == 303
    exchange = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ID_TOKEN}
    again = web_env.client.post("/token", data=exchange)
    assert (again.status_code, again.json()["error"], again.json()["code"]) == (
        400,
        "invalid_request",
        "token_replayed",
    )
    assert "access_token" not in again.json()
    registered = web_env.client.post("/register", data={"token": token}, headers=registration)
    assert (registered.status_code, registered.json()["error"]) == (401, "token_replayed")
    other = web_env.idp.mint(sub="alice", jti=None if jti is None else "exchanged-once", nonce="2")
    assert web_env.client.post("/token", data={**exchange, "subject_token": other}).status_code == 200
    for door in (
        lambda: web_env.client.post("/token", data={**exchange, "subject_token": other}),
        lambda: web_env.client.post("/register", data={"token": other}, headers=registration),
        lambda: web_env.client.get("/sso", params={"token": other}),
    ):
        assert door().status_code in (400, 401)


def test_sso_refuses_old_tokens_and_replays_of_tokens_without_jti(web_env: WebEnv) -> None:
    old = web_env.idp.mint(sub="alice", jti="sso-old", iat=web_env.clock() - 121)
    response = web_env.client.get("/sso", params={"token": old})
    assert response.status_code == 401
    assert response.json()["error"] == "url_token_too_old"
    # Entra's and Firebase's tokens carry no jti: such a token is known by its signed part.
    no_jti = web_env.idp.mint(sub="alice", jti=None)
    assert web_env.client.get("/sso", params={"token": no_jti}).status_code == 303
    again = web_env.client.get("/sso", params={"token": no_jti})
    assert again.status_code == 401
    assert again.json()["error"] == "url_token_replayed"
    other = web_env.idp.mint(sub="alice", jti=None, nonce="another")  # another token: its own use
    assert web_env.client.get("/sso", params={"token": other}).status_code == 303
    missing = web_env.client.get("/sso")
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_token"


def test_a_url_token_without_jti_is_one_use_whatever_its_signature_bytes() -> None:
    """An ECDSA signature (r, s) has a second valid form (r, n - s): a replay key that covered
    the signature would let a captured URL token be used twice."""
    from federation.testing import FrozenClock, MockIdP
    from federation.web import url_token_claim

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256's order
    idp = MockIdP(alg="ES256", clock=FrozenClock())
    bridge = idp.bridge()
    token = idp.mint(jti=None)
    signed, signature = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(signature + "==")
    r, s_ = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    twin_sig = r.to_bytes(32, "big") + (n - s_).to_bytes(32, "big")
    twin = signed + "." + base64.urlsafe_b64encode(twin_sig).rstrip(b"=").decode()
    now = idp.clock()
    first = url_token_claim(bridge.verify(token), now=now, max_age=120, token=token)
    second = url_token_claim(bridge.verify(twin), now=now, max_age=120, token=twin)  # it verifies too
    assert first == second
    with pytest.raises(Exception) as caught:
        url_token_claim(bridge.verify(token), now=now, max_age=120)  # no jti and no token: no key
    assert getattr(caught.value, "code", None) == "url_token_no_jti"


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("https://shop.example.test/cart", "https://shop.example.test/cart"),
        (APP + "/inside", APP + "/inside"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://shop.example.test.evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("javascript:alert(1)", "/"),
        (None, "/"),
    ],
)
def test_sso_redirects_only_where_allowed(web_env: WebEnv, target: str | None, landing: str) -> None:
    params = {"token": web_env.idp.mint(sub="alice", jti=f"sso-{target}")}
    if target is not None:
        params["redirect_to"] = target
    response = web_env.client.get("/sso", params=params)
    assert response.status_code == 303
    assert response.headers["location"] == landing


#: Roles copied from a claim: 150 long group names make a session token too large for a cookie.
GROUP_ROLES = {"version": 1, "roles": {"sync": "authoritative", "rules": [{"grant_from": "groups"}]}}
MANY_GROUPS = [f"group-number-{i:04d}-with-a-long-name" for i in range(150)]


def test_a_session_too_large_for_a_cookie_is_refused_before_anything_ends(make_web_env: Any) -> None:
    env = make_web_env(mapping=GROUP_ROLES)
    assert env.client.get("/sso", params={"token": env.idp.mint(sub="small")}).status_code == 303
    previous = env.client.cookies.get("__Host-federation_session")
    response = env.client.get("/sso", params={"token": env.idp.mint(sub="big", groups=MANY_GROUPS)})
    assert response.status_code == 500
    assert response.json()["error"] == "cookie_too_large"
    assert response.headers["cache-control"] == "no-store"  # the URL held a token
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers
    assert env.client.get("/me", headers=bearer(previous)).status_code == 200  # still signed in
    big = next(u for u in env.bridge.store.users() if u.id != env.client.get("/me").json()["user"]["id"])
    assert env.bridge.sessions_of(big.id) == []  # the session nobody could hold is revoked

    env.idp.approve("big2", groups=MANY_GROUPS)
    callback = browser_login(env)
    assert callback.status_code == 500
    assert callback.json()["error"] == "cookie_too_large"
    assert env.client.get("/me", headers=bearer(previous)).status_code == 200


@pytest.mark.parametrize("path", ["/sso", "/callback/mock"])
def test_head_never_spends_a_single_use_credential(web_env: WebEnv, path: str) -> None:
    token = web_env.idp.mint(sub="alice", jti="sso-head")
    head = web_env.client.head(path, params={"token": token, "code": "a-code", "state": "a-state"})
    assert head.status_code == 405
    assert head.headers["allow"] == "GET"
    assert "set-cookie" not in head.headers
    for method in ("OPTIONS", "POST", "PUT"):  # the Allow header never offers HEAD either
        assert web_env.client.request(method, path).headers["allow"] == "GET"
    assert web_env.client.get("/sso", params={"token": token}).status_code == 303  # not spent


# -- /login and /callback -----------------------------------------------------------------------


def test_sign_in_flow_sets_cookies_and_returns_to_the_page(web_env: WebEnv) -> None:
    web_env.idp.approve("alice", email="alice@example.test", email_verified=True)
    start = web_env.client.get("/login/mock", params={"redirect_to": "/dashboard"})
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [APP + "/callback/mock"]
    assert query["state"] and query["nonce"] and query["code_challenge"]
    answer = web_env.idp.client().get(start.headers["location"])
    done = web_env.client.get(answer.headers["location"].removeprefix(APP))
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard"
    me = web_env.client.get("/me").json()
    assert me["user"]["email"] == "alice@example.test"


def test_callback_without_this_browsers_state_is_refused(web_env: WebEnv) -> None:
    start = web_env.client.get("/login/mock")
    answer = web_env.idp.client().get(start.headers["location"])
    stranger = TestClient(web_env.app, base_url=APP, follow_redirects=False)
    response = stranger.get(answer.headers["location"].removeprefix(APP))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "set-cookie" not in response.headers or "federation_session" not in response.headers["set-cookie"]
    forged = web_env.client.get("/callback/mock", params={"code": "x", "state": "not-the-state"})
    assert forged.status_code == 400


def _authorized(env: WebEnv, redirect_to: str) -> str:
    """Begin a sign-in in ``env.client``'s browser; the callback path the issuer sends it to."""
    start = env.client.get("/login/mock", params={"redirect_to": redirect_to})
    assert start.status_code == 302
    return str(env.idp.client().get(start.headers["location"]).headers["location"]).removeprefix(APP)


def test_sign_ins_in_two_tabs_each_finish(web_env: WebEnv) -> None:
    """RFC 6749 §10.12: each request's state binds that request; a second tab's sign-in
    (or a cross-site navigation to /login) must not cancel the first."""
    web_env.idp.approve("alice")
    first = _authorized(web_env, "/one")
    second = _authorized(web_env, "/two")
    assert web_env.client.get(second).headers["location"] == "/two"
    done = web_env.client.get(first)
    assert done.status_code == 303
    assert done.headers["location"] == "/one"
    assert web_env.client.get(first).status_code == 400  # each state is used once


def test_a_browser_keeps_only_its_newest_open_sign_ins(web_env: WebEnv) -> None:
    web_env.idp.approve("alice")
    callbacks = [_authorized(web_env, f"/tab{i}") for i in range(MAX_OPEN_SIGN_INS + 1)]
    assert web_env.client.get(callbacks[0]).status_code == 400  # the oldest made room
    assert web_env.client.get(callbacks[-1]).status_code == 303


def test_a_state_another_server_started_by_a_clock_ahead_is_kept() -> None:
    """Behind one load balancer, /login and /callback may be two servers a second or so
    apart: a state dated ahead of this clock was dropped (Django's views had kept it)."""
    from federation.web import finish_sign_in, start_sign_in

    stored = start_sign_in(None, "s1", {"nonce": "n"}, issuer="corp", now=1000.0)
    data, rest = finish_sign_in(stored, "s1", issuer="corp", now=999.0)
    assert data is not None and data["nonce"] == "n" and rest == {}
    far_ahead = start_sign_in(None, "s2", {}, issuer="corp", now=2000.0)
    assert finish_sign_in(far_ahead, "s2", issuer="corp", now=1000.0)[0] is None  # not a clock's drift
    assert finish_sign_in(stored, "s1", issuer="other", now=1000.0)[0] is None


def test_each_sign_in_state_expires_on_its_own(web_env: WebEnv) -> None:
    """A state outlives its ten minutes neither by itself nor by newer sign-ins that
    rewrite the cookie (which re-signs it)."""
    web_env.idp.approve("alice")
    lone = _authorized(web_env, "/lone")
    web_env.clock.advance(SIGN_IN_MAX_AGE)
    assert web_env.client.get(lone).status_code == 400
    old = _authorized(web_env, "/old")
    web_env.clock.advance(SIGN_IN_MAX_AGE - 100)
    fresh = web_env.client.get("/login/mock", params={"redirect_to": "/fresh"})
    web_env.clock.advance(101)
    assert web_env.client.get(old).status_code == 400
    answer = web_env.idp.client().get(fresh.headers["location"])
    assert web_env.client.get(answer.headers["location"].removeprefix(APP)).status_code == 303


def test_the_state_cookie_stays_within_what_a_browser_keeps(web_env: WebEnv) -> None:
    long_target = "/" + "a" * 2000
    for _ in range(MAX_OPEN_SIGN_INS):
        start = web_env.client.get("/login/mock", params={"redirect_to": long_target})
        header = next(h for h in start.headers.get_list("set-cookie") if "federation_oauth" in h)
        assert len(header.split(";")[0]) <= 4096


def test_a_target_too_large_for_the_state_cookie_lands_home_instead_of_failing(web_env: WebEnv) -> None:
    """A relative target of quotes is safe and under the length limit, but JSON doubles it:
    kept, the cookie passed 4 KB, the browser dropped it and the callback found no state."""
    web_env.idp.approve("alice")
    target = "/" + '"' * 1400
    assert web_env.app.state.federation.settings.redirects.is_safe(target)
    start = web_env.client.get("/login/mock", params={"redirect_to": target})
    header = next(h for h in start.headers.get_list("set-cookie") if "federation_oauth" in h)
    assert len(header.split(";")[0]) <= 4096
    answer = web_env.idp.client().get(start.headers["location"])
    done = web_env.client.get(answer.headers["location"].removeprefix(APP))
    assert done.status_code == 303
    assert done.headers["location"] == web_env.app.state.federation.settings.redirects.target(None)


def test_a_restored_copy_of_the_state_cookie_does_not_reopen_a_spent_state(web_env: WebEnv) -> None:
    """The callback rewrites the cookie without the state; a copy taken before (the same
    cookie value, restored) must not make the spent state usable again."""
    web_env.idp.approve("alice")
    callback = _authorized(web_env, "/once")
    earlier = dict(web_env.client.cookies.items())
    assert web_env.client.get(callback).status_code == 303
    replay = TestClient(web_env.app, base_url=APP, follow_redirects=False)
    for name, value in earlier.items():
        replay.cookies.set(name, value)
    refused = replay.get(callback)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"


def test_the_state_cookie_is_host_only_when_session_cookies_are_shared(make_web_env: Any) -> None:
    """A __Secure- state cookie could be planted from a sibling subdomain with the
    attacker's own sign-in, signing the victim in as the attacker (login CSRF)."""
    env = make_web_env(web={"cookie_domain": ".example.test"})
    start = env.client.get("/login/mock")
    cookies = set_cookies(start)
    assert "__Host-federation_oauth" in cookies
    assert "domain" not in attributes(cookies["__Host-federation_oauth"])


def _without_iss(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("iss="))
    return parts._replace(query=query).geturl()


def _iss_twice(url: str) -> str:
    return url + "&" + next(p for p in urlsplit(url).query.split("&") if p.startswith("iss="))


@pytest.mark.parametrize(
    "mix_up",
    [
        lambda url: url + "&iss=https%3A%2F%2Fevil.example",  # a second iss, another server's
        lambda url: _without_iss(url) + "&iss=https%3A%2F%2Fevil.example",  # another server's
        _iss_twice,  # the right one, twice
        _without_iss,  # none, from a server whose metadata says it always sends one
    ],
    ids=["a-second-iss", "another-iss", "the-same-iss-twice", "no-iss"],
)
def test_an_authorization_response_of_another_issuer_is_refused(web_env: WebEnv, mix_up: Any) -> None:
    """RFC 9207 (the mix-up defence, RFC 9700 §4.4): the callback's iss must be the issuer the
    browser was sent to, and the code is never sent to the token endpoint otherwise."""
    start = web_env.client.get("/login/mock")
    answer = web_env.idp.client().get(start.headers["location"])
    callback = answer.headers["location"].removeprefix(APP)
    assert f"iss={web_env.idp.issuer.replace(':', '%3A').replace('/', '%2F')}" in callback
    response = web_env.client.get(mix_up(callback))
    assert response.status_code == 400
    assert response.json()["error"] == "issuer_mismatch"
    assert web_env.idp.requests_to("token") == []
    assert "federation_session" not in response.headers.get("set-cookie", "")


def test_check_response_issuer_follows_rfc_9207() -> None:
    from federation.errors import InvalidRequest
    from federation.web import check_response_issuer

    supported = {"issuer": "https://idp.test", "authorization_response_iss_parameter_supported": True}
    silent = {"issuer": "https://idp.test"}
    check_response_issuer(["https://idp.test"], supported)
    check_response_issuer(["https://idp.test"], silent)
    check_response_issuer([], silent)  # a server that does not send it: nothing to compare
    for values, metadata in (
        (["https://idp.test/"], supported),  # compared exactly, as issuers are
        (["https://evil.example"], silent),
        (["https://idp.test", "https://idp.test"], silent),
        ([], supported),
        (["https://idp.test"], {}),  # no issuer in the metadata to compare with
    ):
        with pytest.raises(InvalidRequest) as caught:
            check_response_issuer(values, metadata)
        assert caught.value.code == "issuer_mismatch"


def test_check_id_token_wants_the_sign_ins_own_issuer(federation_clock: Any) -> None:
    from federation import Bridge
    from federation.errors import InvalidToken
    from federation.testing import MockIdP
    from federation.web import SignInClient, check_id_token, sign_in_clients

    one = MockIdP("https://one.example.test", clock=federation_clock)
    two = MockIdP("https://two.example.test", clock=federation_clock)
    entries = [
        {**idp.issuer_config(), "name": name, "login": {"client_id": idp.audience}}
        for name, idp in (("one", one), ("two", two))
    ]
    transport = httpx.MockTransport(lambda r: (one if one.handles(r) else two).handler(r))
    bridge = Bridge.from_dict(
        {"issuers": entries}, http_client=httpx.Client(transport=transport), clock=federation_clock
    )
    clients = sign_in_clients(bridge)
    token = bridge.verify(two.mint(sub="ada", nonce="n-1"))
    check_id_token(token, "n-1", clients["two"])
    for client in (clients["one"], SignInClient("bare", "c", None, (), "https://two.example.test/x")):
        with pytest.raises(InvalidToken) as caught:
            check_id_token(token, "n-1", client)
        assert caught.value.code == "issuer_mismatch"


def test_a_nonce_that_is_not_the_sign_ins_is_refused(web_env: WebEnv) -> None:
    web_env.idp.approve("alice", nonce="someone-elses-nonce")
    response = browser_login(web_env)
    assert response.status_code == 401
    assert response.json()["error"] == "nonce_mismatch"


def test_max_age_asks_for_a_recent_sign_in_and_checks_auth_time(
    make_web_env: Any, federation_clock: Any
) -> None:
    """OIDC Core §3.1.2.1 / §3.1.3.7 step 13: with login.max_age the request carries it, and
    the id token's auth_time must be present and recent (the bridge's leeway of 60 s on top)."""
    env = make_web_env(login={"max_age": 300})
    start = env.client.get("/login/mock")
    assert parse_qs(urlsplit(start.headers["location"]).query)["max_age"] == ["300"]
    now = int(federation_clock())
    env.idp.approve("alice", auth_time=now - 360)  # max_age + leeway: still accepted
    assert browser_login(env).status_code == 303
    for auth_time, code in (
        (now - 361, "auth_too_old"),
        (None, "auth_time_missing"),
        ("1", "auth_time_missing"),
        (True, "auth_time_missing"),
        (10**400, "auth_time_missing"),  # a number no date can be (and no float holds)
    ):
        env.idp.approve("alice", auth_time=auth_time)
        refused = browser_login(env, client=TestClient(env.app, base_url=APP, follow_redirects=False))
        assert refused.status_code == 401, auth_time
        assert refused.json()["error"] == code
        assert "federation_session" not in refused.headers.get("set-cookie", "")


def test_login_userinfo_completes_the_id_tokens_claims(make_web_env: Any) -> None:
    """OIDC Core §5.3: with login.userinfo the UserInfo response adds what the id token lacks
    (a provider that puts email only there), never replacing a claim the token carries."""
    env = make_web_env(login={"userinfo": True})
    env.idp.approve("alice", userinfo={"email": "alice@example.test", "email_verified": True})
    assert browser_login(env).status_code == 303
    assert env.client.get("/me").json()["user"]["email"] == "alice@example.test"
    (asked,) = env.idp.requests_to("userinfo")
    token = env.idp.requests_to("token")
    assert asked.headers["authorization"].startswith("Bearer ") and token

    env.idp.approve("bob", email="bob@example.test", email_verified=True, userinfo={"email": "x@evil.test"})
    other = TestClient(env.app, base_url=APP, follow_redirects=False)
    assert browser_login(env, client=other).status_code == 303
    assert other.get("/me").json()["user"]["email"] == "bob@example.test"  # the signed claim stands


def test_map_03_a_userinfo_email_verified_never_links_the_id_tokens_email(make_web_env: Any) -> None:
    """The id token carries an address with no email_verified, and the UserInfo response
    vouches for another one: with linking on, the victim's account stays out of reach."""
    store = MemoryStore()
    now = datetime.now(timezone.utc)
    with store.transaction() as tx:
        victim = tx.insert_user(
            NewUser(None, "victim@corp.example", True, "Victim", frozenset(), {}, "active", now, now, None)
        )
    env = make_web_env(
        store=store,
        login={"userinfo": True},
        entry={"trust_email": True},
        top={"provisioning": {"link_by_email": True}},
    )
    env.idp.approve(
        "mallory",
        email="victim@corp.example",
        email_verified=None,
        userinfo={"email": "mallory@own.example", "email_verified": True},
    )
    refused = browser_login(env)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "link_refused"
    assert env.client.get("/me").status_code == 401
    assert [u.id for u in store.users()] == [victim]


def test_without_login_userinfo_the_endpoint_is_never_asked(web_env: WebEnv) -> None:
    web_env.idp.approve("alice", userinfo={"email": "alice@example.test", "email_verified": True})
    assert browser_login(web_env).status_code == 303
    assert web_env.client.get("/me").json()["user"]["email"] is None
    assert web_env.idp.requests_to("userinfo") == []


@pytest.mark.parametrize(
    ("trouble", "status", "error"),
    [
        ({"userinfo": {"sub": "mallory"}}, 401, "userinfo_subject_mismatch"),
        ({"outage": {"status": 503}}, 503, "provider_unavailable"),
        ({"outage": {"status": 401}}, 403, "provider_error"),
        ({"outage": {"body": b"[1]"}}, 403, "provider_error"),
        ({"outage": {"timeout": True}}, 503, "provider_unavailable"),
    ],
    ids=["another-sub", "down", "token-refused", "not-an-object", "timeout"],
)
def test_a_userinfo_failure_ends_the_sign_in_without_a_session(
    make_web_env: Any, trouble: dict[str, Any], status: int, error: str
) -> None:
    env = make_web_env(login={"userinfo": True})
    env.idp.approve("alice", userinfo=trouble.get("userinfo", {"email": "alice@example.test"}))
    start = env.client.get("/login/mock")
    answer = env.idp.client().get(start.headers["location"])
    if "outage" in trouble:
        env.idp.outage(**trouble["outage"], only="userinfo")
    refused = env.client.get(answer.headers["location"].removeprefix(APP))
    assert refused.status_code == status, refused.text
    assert refused.json()["error"] == error
    assert "federation_session" not in refused.headers.get("set-cookie", "")
    assert env.bridge.store.users() == []


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [("login", "login"), (["select_account", "consent"], "select_account consent"), ("none", "none")],
)
def test_login_prompt_is_asked_of_the_provider(make_web_env: Any, prompt: Any, sent: str) -> None:
    """OIDC Core §3.1.2.1: prompt=login makes a provider sign the user in again even when it
    ignores max_age (django-oauth-toolkit does); the values go space-delimited, as configured."""
    env = make_web_env(login={"prompt": prompt, "max_age": 60})
    query = parse_qs(urlsplit(env.client.get("/login/mock").headers["location"]).query)
    assert query["prompt"] == [sent] and query["max_age"] == ["60"]
    env.idp.approve("alice")
    assert browser_login(env).status_code == 303


def test_without_login_prompt_none_is_sent(web_env: WebEnv) -> None:
    assert "prompt" not in parse_qs(urlsplit(web_env.client.get("/login/mock").headers["location"]).query)


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        (["none", "login"], "prompt none cannot be combined"),
        (["login", "login"], "each value once"),
        ([], "each value once"),
        ("relogin", "login.prompt"),
        (True, "login.prompt"),
    ],
)
def test_a_prompt_the_spec_does_not_define_is_a_config_error(prompt: Any, why: str) -> None:
    from federation import Bridge
    from federation.testing import MockIdP

    config = MockIdP().bridge_config()
    config["issuers"][0]["login"] = {"client_id": "c", "prompt": prompt}
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(config)
    assert why in str(caught.value)


def test_without_max_age_nothing_asks_for_auth_time(web_env: WebEnv, federation_clock: Any) -> None:
    start = web_env.client.get("/login/mock")
    assert "max_age" not in parse_qs(urlsplit(start.headers["location"]).query)
    web_env.idp.approve("alice", auth_time=None)
    assert browser_login(web_env).status_code == 303


@pytest.mark.parametrize("max_age", [True, -1, 10**9, "soon"])
def test_a_max_age_that_is_no_duration_is_a_config_error(max_age: Any) -> None:
    from federation import Bridge
    from federation.testing import MockIdP

    config = MockIdP().bridge_config()
    config["issuers"][0]["login"] = {"client_id": "c", "max_age": max_age}
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(config)
    assert "max_age" in str(caught.value)


@pytest.mark.parametrize(
    ("provider", "params"),
    [
        ("oidc", {}),
        ("azure_ad", {}),
        ("azure_ad", {"tenant": "organizations"}),
        ("azure_ad", {"version": "1.0"}),
        ("azure_ad_b2c", {}),
        ("cognito", {}),
        ("google", {}),
        ("keycloak", {}),
        ("okta", {}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())) or "default",
)
def test_every_providers_mock_signs_in_through_the_service(
    provider: str, params: dict[str, Any], federation_clock: Any
) -> None:
    """The testing toolkit's code flow gives each provider's real token shapes, and the
    service takes them: Entra's id tokens carry no azp (its profile reads azp as an access
    token's), Google's access tokens are opaque (the id token's at_hash still binds one)."""
    from federation.sessions import generate_private_key_pem
    from federation.testing import MockIdP

    idp = MockIdP.for_provider(provider, clock=federation_clock, **params)
    idp.register_client(idp.audience, client_secret="a-client-secret", redirect_uris=[f"{APP}/callback/it"])
    environ = {"SESSION_KEY": generate_private_key_pem("ES256").decode(), "SECRET": "a-client-secret"}
    config = idp.bridge_config(
        sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]}, web={"public_url": APP}
    )
    login = {
        "client_id": idp.audience,
        "client_secret": {"env": "SECRET"},
        "discovery_url": idp.discovery_url,
    }
    config["issuers"][0].update(name="it", login=login)
    bridge = idp.bridge(config=config, environ=environ)
    with TestClient(create_app(bridge, environ=environ), base_url=APP, follow_redirects=False) as client:
        idp.approve("user-1")
        start = client.get("/login/it")
        assert start.status_code == 302, start.text
        answer = idp.client().get(start.headers["location"])
        done = client.get(answer.headers["location"].removeprefix(APP))
        assert done.status_code == 303, done.text
        assert client.get("/me").json()["user"]["id"]
    bridge.close()


def test_a_refusal_at_the_provider_is_403(web_env: WebEnv) -> None:
    web_env.idp.deny("access_denied")
    response = browser_login(web_env)
    assert response.status_code == 403
    assert response.json()["error"] == "provider_refused"


def test_an_id_token_of_another_trusted_issuer_is_refused(
    make_web_env: Any, federation_clock: Any, tmp_path: Any
) -> None:
    """OIDC Core §3.1.3.7 step 2: the sign-in's id token must come from its own issuer. A
    token endpoint answering with another trusted issuer's id token, with this sign-in's
    nonce (which the provider was sent), would otherwise sign the browser in as that
    issuer's user: the bridge verifies a token by the issuer it names."""
    import json

    from federation.testing import MockIdP

    other = MockIdP("https://other.example.test", audience="web-client", clock=federation_clock)
    keys = tmp_path / "other-jwks.json"
    keys.write_text(json.dumps(other.jwks()))
    entry = {k: v for k, v in other.issuer_config().items() if k != "jwks_uri"}
    env = make_web_env(issuers=[{**entry, "name": "other", "jwks_file": str(keys)}])
    assert env.idp.audience == other.audience  # the same client id at both: only iss differs
    seen: list[str] = []

    class Replaying(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token"):
                nonce = parse_qs(urlsplit(seen[-1]).query)["nonce"][0]
                forged = other.mint(sub="mallory", nonce=nonce)
                answer = {"id_token": forged, "access_token": "x", "token_type": "Bearer"}
                return httpx.Response(200, json=answer)
            return await env.idp.transport().handle_async_request(request)

    app = create_app(env.bridge, environ=env.environ, oauth_transport=Replaying())
    client = TestClient(app, base_url=APP, follow_redirects=False)
    start = client.get("/login/mock")
    seen.append(start.headers["location"])
    answer = env.idp.client().get(start.headers["location"])
    response = client.get(answer.headers["location"].removeprefix(APP))
    assert response.status_code == 401
    assert response.json()["error"] == "issuer_mismatch"
    assert "federation_session" not in response.headers.get("set-cookie", "")
    assert env.bridge.store.users() == []  # nobody was provisioned
    # The same forged token is a valid token of its own issuer: only the sign-in refuses it.
    assert env.bridge.verify(other.mint(sub="mallory")).issuer == other.issuer


class Rewriting(httpx.AsyncBaseTransport):
    """The mock provider, with members of its JSON answers on one path replaced."""

    def __init__(self, idp: Any, path_suffix: str, changes: dict[str, Any]) -> None:
        self.idp, self.path_suffix, self.changes = idp, path_suffix, changes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self.idp.transport().handle_async_request(request)
        if not request.url.path.endswith(self.path_suffix):
            return response
        import json

        return httpx.Response(200, json={**json.loads(await response.aread()), **self.changes})


def test_check_metadata_wants_a_listed_issuer_or_a_template_of_an_unlisted_kind() -> None:
    from federation import Bridge
    from federation.errors import KeySetUnavailable
    from federation.web import check_metadata, sign_in_clients

    tenant, client_id = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    concrete = f"https://login.microsoftonline.com/{tenant}/v2.0"
    common = "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"

    def sign_in(**entry: Any) -> Any:
        base = {"provider": "azure_ad", "audiences": [client_id], "name": "entra"}
        bridge = Bridge.from_dict({"issuers": [{**base, **entry}]})
        return sign_in_clients(bridge)["entra"]

    single = sign_in(tenant=tenant, login={"client_id": client_id})
    listed = sign_in(
        tenant="organizations",
        allowed_tenants=[tenant],
        login={"client_id": client_id, "discovery_url": common},
    )
    anyone = sign_in(
        tenant="organizations", allow_any_tenant=True, login={"client_id": client_id, "discovery_url": common}
    )
    check_metadata({"issuer": concrete}, single)
    for entra in (listed, anyone, single):  # Entra's organizations metadata: the template
        check_metadata({"issuer": template}, entra)
    oidc = sign_in_clients(Bridge.from_dict(mock_config_with_login()))["mock"]
    refused = [
        ({"issuer": "https://login.microsoftonline.com/common/v2.0"}, single),
        ({"issuer": "https://login.microsoftonline.com/99999999-2222-3333-4444-555555555555/v2.0"}, listed),
        ({"issuer": "https://idp.test/{x}"}, oidc),  # a template where every issuer is listed
        ({"issuer": "https://evil.example"}, oidc),
        ({}, oidc),
        ({"issuer": ["https://idp.test"]}, oidc),
    ]
    for metadata, client in refused:
        with pytest.raises(KeySetUnavailable) as caught:
            check_metadata(metadata, client)
        assert caught.value.reason == "discovery_issuer_mismatch", metadata
    check_metadata({"issuer": "https://idp.test"}, oidc)


def mock_config_with_login() -> dict[str, Any]:
    from federation.testing import MockIdP

    config = MockIdP().bridge_config()
    config["issuers"][0].update(name="mock", login={"client_id": "c"})
    return config


def test_metadata_of_another_issuer_is_not_used(web_env: WebEnv) -> None:
    """RFC 8414 §3.3 / OIDC Discovery §4.3: the provider's metadata must name the issuer it was
    fetched for; otherwise neither its endpoints nor its issuer (RFC 9207's reference) are used."""
    idp = web_env.idp
    renaming = Rewriting(idp, "/openid-configuration", {"issuer": "https://evil.example"})
    app = create_app(web_env.bridge, environ=web_env.environ, oauth_transport=renaming)
    client = TestClient(app, base_url=APP, follow_redirects=False)
    refused = client.get("/login/mock")
    assert refused.status_code == 503
    assert refused.json()["error"] == "keyset_unavailable"
    assert idp.requests_to("authorize") == []
    # A sign-in started while the metadata was right ends at the callback all the same.
    start = web_env.client.get("/login/mock")
    answer = idp.client().get(start.headers["location"])
    client.cookies = web_env.client.cookies
    late = client.get(answer.headers["location"].removeprefix(APP))
    assert late.status_code == 503
    assert idp.requests_to("token") == []


def test_an_access_token_the_id_token_does_not_bind_fails_the_sign_in(web_env: WebEnv) -> None:
    """OIDC Core §3.1.3.8: the provider's id tokens carry at_hash; a token endpoint answer
    whose access token is not the one the id token names is refused."""
    idp = web_env.idp
    another = idp.mint(sub="alice", token_type="access")  # valid, but not the one the id token names
    swapping = Rewriting(idp, "/token", {"access_token": another})
    app = create_app(web_env.bridge, environ=web_env.environ, oauth_transport=swapping)
    client = TestClient(app, base_url=APP, follow_redirects=False)
    response = browser_login(web_env, client=client)
    assert response.status_code == 401
    assert response.json()["error"] == "at_hash_mismatch"
    assert "federation_session" not in response.headers.get("set-cookie", "")
    assert browser_login(web_env).status_code == 303  # the provider's own answer is bound: signed in


def test_a_token_endpoint_answer_past_the_bound_fails_the_sign_in(web_env: WebEnv) -> None:
    """An answer that never ends (a compromised or misconfigured endpoint) is cut at
    keys.max_response_bytes and is the provider's failure, whatever transport the app gave."""
    idp = web_env.idp
    chunks = [0]

    async def endless() -> Any:
        for _ in range(100_000):  # 6.4 GB if nobody stops reading
            chunks[0] += 1
            yield b"{" * 65536

    class Endless(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token"):
                return httpx.Response(200, headers={"content-type": "application/json"}, content=endless())
            return await idp.transport().handle_async_request(request)

    app = create_app(web_env.bridge, environ=web_env.environ, oauth_transport=Endless())
    client = TestClient(app, base_url=APP, follow_redirects=False)
    response = browser_login(web_env, client=client)
    assert response.status_code == 403
    assert response.json()["error"] == "provider_error"
    assert chunks[0] <= 256 * 1024 // 65536 + 1  # the default bound, then it stopped reading
    assert "federation_session" not in response.headers.get("set-cookie", "")


def test_an_unknown_sign_in_is_404(web_env: WebEnv) -> None:
    assert web_env.client.get("/login/nobody").status_code == 404
    assert web_env.client.get("/callback/nobody").status_code == 404


def test_every_login_is_a_new_session_and_ends_the_old_one(web_env: WebEnv) -> None:
    browser_login(web_env)
    first = web_env.client.cookies.get("__Host-federation_session")
    browser_login(web_env)
    second = web_env.client.cookies.get("__Host-federation_session")
    assert first and second and first != second
    assert web_env.client.get("/me", headers=bearer(first)).status_code == 401
    assert web_env.client.get("/me", headers=bearer(second)).status_code == 200


# -- cookies, CSRF, logout -------------------------------------------------------------------


def test_session_cookie_attributes(web_env: WebEnv) -> None:
    response = browser_login(web_env)
    cookies = set_cookies(response)
    session = attributes(cookies["__Host-federation_session"])
    assert {"secure", "httponly", "path", "samesite", "max-age"} <= set(session)
    assert session["path"] == "/"
    assert session["samesite"] == "Lax"
    assert "domain" not in session
    assert 0 < int(session["max-age"]) <= 3600
    csrf = attributes(cookies["__Host-federation_csrf"])
    assert "httponly" not in csrf and "secure" in csrf and csrf["path"] == "/"
    assert int(csrf["max-age"]) == int(session["max-age"])


def test_shared_cookies_across_subdomains_use_the_secure_prefix(make_web_env: Any) -> None:
    env = make_web_env(web={"cookie_domain": ".example.test"})
    response = browser_login(env)
    cookies = set_cookies(response)
    assert "__Secure-federation_session" in cookies
    assert attributes(cookies["__Secure-federation_session"])["domain"] == ".example.test"


def test_cookie_authenticated_unsafe_requests_need_csrf(web_env: WebEnv) -> None:
    browser_login(web_env)
    no_header = web_env.client.delete("/users/me", headers={"Origin": APP})
    assert no_header.status_code == 403
    assert no_header.json()["error"] == "csrf_failed"
    headers = csrf_headers(web_env)
    wrong_origin = web_env.client.delete("/users/me", headers={**headers, "Origin": "https://evil.example"})
    assert wrong_origin.status_code == 403
    no_origin = web_env.client.delete("/users/me", headers={"X-CSRF-Token": headers["X-CSRF-Token"]})
    assert no_origin.status_code == 403
    forged = web_env.client.delete("/users/me", headers={**headers, "X-CSRF-Token": "A" * 43})
    assert forged.status_code == 403
    same_site = web_env.client.delete(
        "/users/me", headers={"X-CSRF-Token": headers["X-CSRF-Token"], "Sec-Fetch-Site": "same-origin"}
    )
    assert same_site.status_code == 200


def test_bearer_requests_are_exempt_from_csrf(web_env: WebEnv) -> None:
    session = web_env.exchange("alice")
    response = web_env.client.delete("/users/me", headers=bearer(session["access_token"]))
    assert response.status_code == 200


def test_logout_revokes_and_clears_with_identical_attributes(web_env: WebEnv) -> None:
    login = browser_login(web_env)
    token = web_env.client.cookies.get("__Host-federation_session")
    refused = web_env.client.post("/logout", headers={"Origin": APP})
    assert refused.status_code == 403
    response = web_env.client.post(
        "/logout", data={"redirect_to": "//evil.example"}, headers=csrf_headers(web_env)
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    set_at_login, cleared = set_cookies(login), set_cookies(response)
    for name in ("__Host-federation_session", "__Host-federation_csrf"):
        before, after = attributes(set_at_login[name]), attributes(cleared[name])
        assert after.pop("max-age") == "0"
        before.pop("max-age")
        assert before == after
        assert cleared[name].startswith(f"{name}=;")
    assert token is not None
    assert web_env.client.get("/me", headers=bearer(token)).status_code == 401


def test_a_logout_whose_body_is_refused_leaves_the_session_alone(web_env: WebEnv) -> None:
    """A refused request has no effect: the session was revoked, then the body refused
    with the cookies left in place."""
    browser_login(web_env)
    refused = web_env.client.post(
        "/logout",
        content=b"redirect_to=/a&redirect_to=/b",
        headers={**csrf_headers(web_env), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
    assert web_env.client.get("/me").status_code == 200


def test_logout_with_the_session_cookie_twice_is_400_and_clears_the_cookies(web_env: WebEnv) -> None:
    """A planted second copy made logout a 500 that cleared nothing: the user could not sign out."""
    browser_login(web_env)
    token = web_env.client.cookies.get("__Host-federation_session")
    assert token is not None
    web_env.client.cookies.clear()
    doubled = {"Cookie": f"__Host-federation_session={token}; __Host-federation_session=planted"}
    foreign = web_env.client.post("/logout", headers={**doubled, "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    response = web_env.client.post("/logout", headers={**doubled, "Origin": APP})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    cleared = set_cookies(response)
    assert cleared["__Host-federation_session"].startswith("__Host-federation_session=;")
    assert "max-age=0" in cleared["__Host-federation_csrf"].lower()


def test_token_exchange_refuses_other_targets_and_delegation(web_env: WebEnv) -> None:
    """RFC 8693 §2.2.2 and §2.1: an audience or resource not this app's is invalid_target;
    an actor_token (delegation) is not silently ignored."""
    base = {"grant_type": EXCHANGE, "subject_token_type": ID_TOKEN}
    for extra in ({"audience": "https://other.example"}, {"resource": "https://other.example/api"}):
        answer = web_env.client.post("/token", data={**base, "subject_token": web_env.login_token(), **extra})
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_target")
    actor = {"actor_token": web_env.login_token("bob"), "actor_token_type": ID_TOKEN}
    answer = web_env.client.post("/token", data={**base, "subject_token": web_env.login_token(), **actor})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    for target in (
        {"audience": APP},
        {"resource": APP + "/api"},
        {"audience": "HTTPS://APP.EXAMPLE.TEST:443"},
    ):
        mine = web_env.client.post("/token", data={**base, "subject_token": web_env.login_token(), **target})
        assert mine.status_code == 200, target  # RFC 8707: a resource of this app's origin


def test_error_descriptions_hold_only_the_characters_rfc_6749_allows(web_env: WebEnv) -> None:
    answer = web_env.client.post(
        "/token",
        content="gr\u00fcnt=1&gr\u00fcnt=2".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    description = answer.json()["error_description"]
    assert "gr" not in description  # a name the client made up is not echoed
    assert all(" " <= c <= "~" and c not in '"\\' for c in description)


@pytest.mark.parametrize("repeated", ["state", "code"])
def test_a_callback_with_a_repeated_parameter_is_refused(web_env: WebEnv, repeated: str) -> None:
    """RFC 6749 §3.1: sent twice, the last copy won (state=forged&state=<real> signed in)."""
    start = web_env.client.get("/login/mock")
    callback = web_env.idp.client().get(start.headers["location"]).headers["location"].removeprefix(APP)
    forged = callback.replace(f"{repeated}=", f"{repeated}=forged&{repeated}=", 1)
    response = web_env.client.get(forged)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert web_env.idp.requests_to("token") == []
    assert web_env.client.get(callback).status_code == 303  # the state is still this browser's


def test_sso_with_a_repeated_token_is_refused(web_env: WebEnv) -> None:
    first, second = web_env.login_token(jti="first-of-two"), web_env.login_token(jti="second-of-two")
    response = web_env.client.get(f"/sso?token={first}&token={second}")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert web_env.client.get("/sso", params={"token": second}).status_code == 303  # not spent


def test_backchannel_logout_ends_the_users_sessions(web_env: WebEnv) -> None:
    """OIDC Back-Channel Logout 1.0 §2.5, §2.8: a form POST from the provider's server."""
    session = web_env.exchange("alice")
    assert web_env.client.get("/me", headers=bearer(session["access_token"])).status_code == 200
    event = {"http://schemas.openid.net/event/backchannel-logout": {}}
    token = web_env.idp.mint(
        sub="alice", sid="op-1", jti="bcl-1", events=event, nonce=None, headers={"typ": "logout+jwt"}
    )
    web_env.client.cookies.clear()
    answer = web_env.client.post("/backchannel-logout", data={"logout_token": token})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert web_env.client.get("/me", headers=bearer(session["access_token"])).status_code == 401
    again = web_env.client.post("/backchannel-logout", data={"logout_token": token})
    assert (again.status_code, again.json()["error"], again.json()["code"]) == (
        400,
        "invalid_request",
        "logout_token_replayed",
    )
    for body in ({}, {"logout_token": "not-a-token"}, {"logout_token": web_env.login_token()}):
        refused = web_env.client.post("/backchannel-logout", data=body)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
    assert web_env.client.get("/backchannel-logout").status_code == 405


@pytest.mark.parametrize("outage", [{"status": 503}, {"timeout": True}])
def test_a_token_endpoint_that_is_down_is_503_not_a_refusal(web_env: WebEnv, outage: dict[str, Any]) -> None:
    """403 provider_error read as a permanent refusal; the provider was only unreachable."""
    start = web_env.client.get("/login/mock")
    callback = web_env.idp.client().get(start.headers["location"]).headers["location"]
    web_env.idp.outage(**outage)
    response = web_env.client.get(callback.removeprefix(APP))
    assert (response.status_code, response.json()["error"]) == (503, "provider_unavailable")
    assert "Retry-After" in response.headers
    web_env.idp.recover()


# -- metadata, keys, health, mounting --------------------------------------------------------


def test_metadata_and_jwks_let_another_app_verify_sessions(web_env: WebEnv) -> None:
    meta = web_env.client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == APP
    assert meta["jwks_uri"] == APP + "/.well-known/jwks.json"
    assert meta["token_endpoint"] == APP + "/token"
    assert meta["revocation_endpoint"] == APP + "/revoke"
    jwks = web_env.client.get("/.well-known/jwks.json").json()
    assert jwks == web_env.bridge.session_jwks()
    assert all("d" not in key for key in jwks["keys"])


def test_healthz_names_what_is_down(make_web_env: Any) -> None:
    env = make_web_env()
    env.idp.outage(status=500)
    down = env.client.get("/healthz")
    assert down.status_code == 503
    assert env.idp.issuer in down.json()["down"]["issuers"]
    env.idp.recover()
    up = env.client.get("/healthz")
    assert up.status_code == 200
    assert up.json()["status"] == "ok"


def test_healthz_never_makes_the_service_fetch_warm_keys(make_web_env: Any) -> None:
    """Every probe refetched the key set (anyone could make the service hammer the
    provider), and a short outage made the service unhealthy while its cached keys
    still verified every token."""
    env = make_web_env()
    assert env.client.get("/healthz").status_code == 200
    fetched = len(env.idp.requests_to("jwks"))
    for _ in range(5):
        assert env.client.get("/healthz").status_code == 200
    assert len(env.idp.requests_to("jwks")) == fetched
    env.idp.outage(status=500)
    assert env.client.get("/healthz").status_code == 200  # the cached keys still answer
    assert env.exchange("alice")["access_token"]


def test_mounted_under_a_prefix(make_web_env: Any) -> None:
    env = make_web_env()
    outer = Starlette(routes=[Mount("/auth", app=env.app)])
    client = TestClient(outer, base_url=APP, follow_redirects=False)
    meta = client.get("/auth/.well-known/oauth-authorization-server").json()
    assert meta["token_endpoint"] == APP + "/auth/token"
    start = client.get("/auth/login/mock")
    redirect_uri = parse_qs(urlsplit(start.headers["location"]).query)["redirect_uri"]
    assert redirect_uri == [APP + "/auth/callback/mock"]


def test_forwarded_headers_never_move_the_service_s_own_urls(web_env: WebEnv) -> None:
    meta = web_env.client.get(
        "/.well-known/oauth-authorization-server",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    ).json()
    assert meta["token_endpoint"] == APP + "/token"


def test_web_config_problems_are_config_errors(make_web_env: Any) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        make_web_env(web={"public_url": "http://app.example.test"})
    with pytest.raises(ConfigError, match="insecure_http"):
        make_web_env(web={"public_url": "http://app.example.test", "insecure_http": True})
    with pytest.raises(ConfigError, match="allowed_redirects"):
        make_web_env(web={"allowed_redirects": ["https://*.example.test"]})
    with pytest.raises(ConfigError, match="cookie_domain"):
        make_web_env(web={"cookie_domain": ".other.test"})
    with pytest.raises(ConfigError, match="home"):
        make_web_env(web={"home": "//evil.example"})


def test_plain_http_cookies_only_on_loopback_with_the_flag(make_web_env: Any) -> None:
    base = "http://127.0.0.1:8000"
    env = make_web_env(web={"public_url": base, "insecure_http": True}, base_url=base)
    session = env.exchange("alice")
    sso = env.client.get("/sso", params={"token": env.idp.mint(sub="alice", jti="plain")})
    cookie = set_cookies(sso)["federation_session"]
    assert "Secure" not in cookie and "HttpOnly" in cookie
    assert session["access_token"]


def test_create_app_needs_a_web_section(federation_clock: Any) -> None:
    from federation.sessions import generate_private_key_pem
    from federation.testing import MockIdP

    idp = MockIdP(clock=federation_clock)
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "K"}]})
    bridge = idp.bridge(config=config, environ={"K": generate_private_key_pem("ES256").decode()})
    with pytest.raises(ConfigError, match="web"):
        create_app(bridge)
