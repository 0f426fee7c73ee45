"""The web layer's pure rules: credentials, the error shape, cookies, CSRF, forwarded headers."""

from __future__ import annotations

import pytest

from federation import errors
from federation.web import (
    CookiePolicy,
    CSRFGuard,
    ForwardedPolicy,
    bearer_token,
    credential_from,
    error_response,
)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz, Bearer abc", "Digest a=b,bearer abc"])
def test_a_bearer_credential_after_another_is_invalid_request(header: str) -> None:
    """Two Authorization headers joined by a server: the bearer one is not ignored (401)."""
    with pytest.raises(errors.InvalidRequest):
        bearer_token(header)


def test_a_quoted_bearer_inside_one_credential_is_no_second_credential() -> None:
    assert bearer_token('Digest username="ops, bearer of news", realm="x", nonce="y"') is None
    assert bearer_token('Digest username="a \\" b", realm="x, bearer y"') is None


@pytest.mark.parametrize("header", ["Bearer", "Bearer    ", "bearer "])
def test_an_empty_bearer_credential_is_invalid_request(header: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        bearer_token(header)


def test_the_header_wins_over_the_cookie() -> None:
    names = ("__Host-federation_session",)
    both = credential_from("Bearer h", {"__Host-federation_session": "c"}, names)
    assert both is not None and (both.token, both.source) == ("h", "bearer")
    cookie = credential_from(None, {"__Host-federation_session": "c"}, names)
    assert cookie is not None and (cookie.token, cookie.source) == ("c", "cookie")
    assert credential_from(None, {"other": "c"}, names) is None
    secret = credential_from("Bearer s3cr3t-t0ken", {}, names)
    assert "s3cr3t" not in repr(secret)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.MissingToken("m"), 401),
        (errors.BadSignature("m"), 401),
        (errors.TokenRevoked("m"), 401),
        (errors.TokenExpired("m"), 401),
        (errors.AccountDisabled("m"), 403),
        (errors.InsufficientRole("m"), 403),
        (errors.AccessDenied("m"), 403),
        (errors.CSRFRejected("m"), 403),
        (errors.KeySetUnavailable("m"), 503),
        (errors.StorageError("m"), 503),
        (errors.CorruptRecord("m"), 503),
        (errors.InvalidRequest("m"), 400),
        (errors.FederationError("m"), 500),
    ],
)
def test_error_response_status_and_body(error: errors.FederationError, status: int) -> None:
    answer = error_response(error)
    assert answer.status == status
    assert answer.body == {"error": error.code, "detail": "m"}
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="federation"')
    if status == 503:
        assert int(answer.headers["Retry-After"]) > 0


def test_a_missing_token_challenge_has_no_error_attribute() -> None:
    assert error_response(errors.MissingToken("m")).headers["WWW-Authenticate"] == 'Bearer realm="federation"'
    assert 'error="invalid_token"' in error_response(errors.BadSignature("m")).headers["WWW-Authenticate"]


def test_a_locked_account_says_when_to_retry() -> None:
    answer = error_response(errors.AccountLocked("m", retry_after=12.2))
    assert answer.status == 403
    assert answer.headers["Retry-After"] == "13"


def test_cookie_names_and_attributes() -> None:
    host = CookiePolicy()
    assert host.name("s") == "__Host-s"
    header = host.set("s", "v", max_age=60)
    assert header == "__Host-s=v; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert host.clear("s") == "__Host-s=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
    shared = CookiePolicy(domain=".example.com")
    assert shared.set("s", "v", max_age=1).startswith(
        "__Secure-s=v; Max-Age=1; Path=/; Domain=.example.com; Secure"
    )
    assert CookiePolicy().name("r", path="/token") == "__Secure-r"
    plain = CookiePolicy(secure=False)
    assert "Secure" not in plain.set("s", "v", max_age=1)
    with pytest.raises(ValueError, match="Secure"):
        CookiePolicy(domain=".example.com", secure=False)


def test_a_cookie_over_4000_bytes_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match="4000 bytes"):
        CookiePolicy().set("s", "a" * 4000, max_age=1)
    assert CookiePolicy().set("s", "a" * 3900, max_age=1)


@pytest.mark.parametrize("value", ["a b", 'a"b', "a;b", "a,b", "a\\b", "é", "a\nb"])
def test_a_cookie_value_must_be_cookie_octets(value: str) -> None:
    with pytest.raises(ValueError):
        CookiePolicy().set("s", value, max_age=1)


def test_csrf_tokens_are_bound_to_the_session() -> None:
    guard = CSRFGuard(b"k" * 32, origins={"https://app.example.com"})
    token = guard.token("session-1")
    assert token != guard.token("session-2")
    assert token == CSRFGuard(b"k" * 32, origins=()).token("session-1")
    assert token != CSRFGuard(b"j" * 32, origins=()).token("session-1")
    ok = {"origin": "https://app.example.com", "fetch_site": None}
    guard.check(method="POST", session_id="session-1", header=token, cookie=token, **ok)
    guard.check(method="GET", session_id="session-1", header=None, cookie=None, origin=None, fetch_site=None)
    other = guard.token("session-2")
    with pytest.raises(errors.CSRFRejected):
        guard.check(method="POST", session_id="session-1", header=other, cookie=other, **ok)
    with pytest.raises(errors.CSRFRejected):
        guard.check(method="DELETE", session_id="session-1", header=token, cookie=None, **ok)
    with pytest.raises(errors.CSRFRejected):
        guard.check(
            method="PUT",
            session_id="session-1",
            header=token,
            cookie=token,
            origin="https://app.example.com.evil.test",
            fetch_site=None,
        )
    with pytest.raises(errors.CSRFRejected):
        guard.check(
            method="PATCH",
            session_id="session-1",
            header=token,
            cookie=token,
            origin="null",
            fetch_site="cross-site",
        )
    guard.check(
        method="PATCH",
        session_id="session-1",
        header=token,
        cookie=token,
        origin=None,
        fetch_site="same-origin",
    )
    with pytest.raises(ValueError):
        CSRFGuard(b"short", origins=())


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    none = ForwardedPolicy()
    assert none.client_address("10.0.0.5", "1.2.3.4") == "10.0.0.5"
    assert none.scheme("10.0.0.5", "http", "https") == "http"
    proxies = ForwardedPolicy(["10.0.0.0/8", "192.0.2.1"])
    assert proxies.client_address("10.0.0.5", "1.2.3.4") == "1.2.3.4"
    assert proxies.client_address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.1.1.1") == "1.2.3.4"  # spoofed left hop
    assert proxies.client_address("203.0.113.9", "1.2.3.4") == "203.0.113.9"  # not a proxy
    assert proxies.client_address("10.0.0.5", "garbage") == "10.0.0.5"
    assert proxies.scheme("192.0.2.1", "http", "https") == "https"
    assert proxies.scheme("192.0.2.1", "http", "gopher") == "http"
    assert proxies.trusts("not-an-ip") is False
