"""OIDC discovery in the key cache (FETCH-02, FETCH-04): the discovery
document must belong to the configured issuer exactly and point at an https
key set; the discovered ``jwks_uri`` is reused while fresh and re-discovered
after a failure. Sync and async paths, exact request counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from federation import Bridge, VerifiedToken
from federation.errors import ConfigError, InvalidToken, KeySetUnavailable
from federation.events import FETCH_FAILED, FETCHED, STALE_SERVED, Event
from federation.testing import FrozenClock, MockIdP

Check = Callable[[Bridge, str], VerifiedToken]
Handler = Callable[[httpx.Request], httpx.Response]
COOLDOWN = 30
MAX_AGE = 300


# Key generation dominates the run time (RSA ~40 ms): every test gets its own
# MockIdP, but the n-th key of an algorithm generated in a test is the same

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


def counts(idp: MockIdP) -> tuple[int, int]:
    """(discovery requests, JWKS requests)."""
    return len(idp.requests_to("discovery")), len(idp.requests_to("jwks"))


@pytest.fixture
def discovering(make_bridge: Callable[..., Bridge]) -> Bridge:
    """A bridge that finds the key set through OIDC discovery."""
    return make_bridge(issuer={"jwks_uri": None})


@pytest.fixture
def build(idp: MockIdP, events: list[Event]) -> Iterator[Callable[[Handler], Bridge]]:
    """A discovering bridge whose HTTP goes through ``handler``."""
    built: list[tuple[Bridge, httpx.Client]] = []

    def factory(handler: Handler) -> Bridge:
        transport = httpx.MockTransport(handler)
        client = httpx.Client(transport=transport)
        bridge = Bridge.from_dict(
            {"issuers": [idp.issuer_config(discovery=True)]},
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=idp.clock,
            on_event=events.append,
        )
        built.append((bridge, client))
        return bridge

    yield factory
    for bridge, client in built:
        bridge.close()
        client.close()


def discovery_max_age(idp: MockIdP, seconds: int) -> Handler:
    """The mock issuer, with the discovery document cacheable for ``seconds``."""

    def handler(request: httpx.Request) -> httpx.Response:
        response = idp.handler(request)
        if str(request.url) == idp.discovery_url and response.status_code == 200:
            response.headers["cache-control"] = f"max-age={seconds}"
        return response

    return handler


def serve_discovery(monkeypatch: pytest.MonkeyPatch, idp: MockIdP, **changes: Any) -> None:
    """Make the mock publish a discovery document with ``changes`` (a value of ... drops the member)."""
    original = idp.discovery_document

    def document(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = original(*args, **kwargs)
        for name, value in changes.items():
            if value is ...:
                doc.pop(name, None)
            else:
                doc[name] = value
        return doc

    monkeypatch.setattr(idp, "discovery_document", document)


def test_cold_start_discovers_then_fetches(
    idp: MockIdP, discovering: Bridge, events: Any, check: Check
) -> None:
    assert check(discovering, idp.mint()).issuer == idp.issuer
    assert check(discovering, idp.mint(alg="ES256")).algorithm == "ES256"
    assert counts(idp) == (1, 1)
    discovery, jwks = idp.requests
    assert str(discovery.url) == "https://idp.test/.well-known/openid-configuration"
    assert str(jwks.url) == idp.jwks_uri
    assert discovery.headers["accept"] == "application/json, application/jwk-set+json"
    assert FETCH_FAILED not in events.names()


@pytest.mark.parametrize(
    "claimed",
    [
        "https://idp.test/",  # a trailing slash is a different issuer
        "https://evil.test",
        "https://IDP.test",
        "https://idp.test/tenant",
        "http://idp.test",
        "https://idp.test ",
        None,
        ["https://idp.test"],
        ...,  # no issuer member at all
    ],
)
def test_discovery_issuer_must_match_exactly(
    idp: MockIdP,
    discovering: Bridge,
    events: Any,
    check: Check,
    monkeypatch: pytest.MonkeyPatch,
    claimed: Any,
) -> None:
    serve_discovery(monkeypatch, idp, issuer=claimed)
    with pytest.raises(KeySetUnavailable) as exc:
        check(discovering, idp.mint())
    assert not isinstance(exc.value, InvalidToken)
    assert (exc.value.code, exc.value.reason) == ("keyset_unavailable", "discovery_issuer_mismatch")
    assert counts(idp) == (1, 0)  # no key set is fetched from a foreign document
    assert events.names() == [FETCH_FAILED]
    assert events[0].detail["reason"] == "discovery_issuer_mismatch"


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://idp.test/jwks",
        "http://127.0.0.1/jwks",
        "file:///etc/passwd",
        "ftp://idp.test/jwks",
        "data:application/json,{}",
        "//idp.test/jwks",
        "/jwks",
        "",
        None,
        42,
        ...,
    ],
)
def test_discovered_jwks_uri_must_be_https(
    idp: MockIdP,
    discovering: Bridge,
    events: Any,
    check: Check,
    monkeypatch: pytest.MonkeyPatch,
    jwks_uri: Any,
) -> None:
    serve_discovery(monkeypatch, idp, jwks_uri=jwks_uri)
    with pytest.raises(KeySetUnavailable) as exc:
        check(discovering, idp.mint())
    assert exc.value.reason == "discovery_jwks_uri_not_https"
    assert len(idp.requests) == 1  # only the discovery document was requested
    assert events.names() == [FETCH_FAILED]


def test_discovered_jwks_uri_on_another_https_host_is_used(
    idp: MockIdP, build: Callable[[Handler], Bridge], check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_discovery(monkeypatch, idp, jwks_uri="https://keys.idp.test/v2/jwks")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "keys.idp.test":
            return httpx.Response(200, json=idp.jwks())
        return idp.handler(request)

    check(build(handler), idp.mint())
    assert seen == [idp.discovery_url, "https://keys.idp.test/v2/jwks"]


BAD_DISCOVERY: dict[str, tuple[Callable[[], httpx.Response], str]] = {
    "500": (lambda: httpx.Response(500), "http_500"),
    "redirect": (
        lambda: httpx.Response(
            302, headers={"location": "https://evil.test/.well-known/openid-configuration"}
        ),
        "redirect_refused",
    ),
    "html": (
        lambda: httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"}),
        "not_json",
    ),
    "duplicate-issuer": (
        lambda: httpx.Response(200, content=b'{"issuer": "https://idp.test", "issuer": "https://evil.test"}'),
        "not_json",
    ),
    "array": (lambda: httpx.Response(200, content=b"[]"), "not_json"),
}


@pytest.mark.parametrize("case", list(BAD_DISCOVERY))
def test_bad_discovery_response_fetches_no_keys(
    idp: MockIdP,
    build: Callable[[Handler], Bridge],
    events: Any,
    check: Check,
    case: str,
) -> None:
    response, reason = BAD_DISCOVERY[case]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if str(request.url) == idp.discovery_url:
            return response()
        return idp.handler(request)

    with pytest.raises(KeySetUnavailable) as exc:
        check(build(handler), idp.mint())
    assert exc.value.reason == reason
    assert seen == [idp.discovery_url]
    assert [e.detail["reason"] for e in events] == [reason]


def test_discovery_failure_backs_off_then_retries(
    idp: MockIdP, discovering: Bridge, clock: FrozenClock, check: Check
) -> None:
    idp.outage(503)
    with pytest.raises(KeySetUnavailable):
        check(discovering, idp.mint())
    clock.advance(COOLDOWN - 1)
    with pytest.raises(KeySetUnavailable):
        check(discovering, idp.mint())
    assert counts(idp) == (1, 0)
    idp.recover()
    clock.advance(1)
    check(discovering, idp.mint())
    assert counts(idp) == (2, 1)


def test_discovered_uri_is_reused_for_a_forced_refetch(
    idp: MockIdP, discovering: Bridge, clock: FrozenClock, check: Check
) -> None:
    check(discovering, idp.mint())
    clock.advance(COOLDOWN)  # both documents still fresh (max-age 300)
    idp.rotate_keys()
    check(discovering, idp.mint())
    assert counts(idp) == (1, 2)
    assert idp.requests_to("jwks")[1].headers["cache-control"] == "no-cache"


def test_discovered_uri_is_reused_while_fresh(
    idp: MockIdP, build: Callable[[Handler], Bridge], clock: FrozenClock, check: Check
) -> None:
    bridge = build(discovery_max_age(idp, 3600))  # discovery fresh 1 h, key set 300 s
    check(bridge, idp.mint())
    assert counts(idp) == (1, 1)
    for expected_jwks in (2, 3, 4):
        clock.advance(MAX_AGE)
        check(bridge, idp.mint())
        assert counts(idp) == (1, expected_jwks)
    clock.set(idp.clock() + 3600)  # past both lifetimes: discover again
    check(bridge, idp.mint())
    assert counts(idp) == (2, 5)


def test_discovery_ttl_is_clamped(
    idp: MockIdP, build: Callable[[Handler], Bridge], clock: FrozenClock, check: Check
) -> None:
    bridge = build(discovery_max_age(idp, 0))  # clamped up to min_ttl (60 s)
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    idp.rotate_keys()
    check(bridge, idp.mint())  # forced refetch at +30 s: discovery still fresh
    assert counts(idp) == (1, 2)
    clock.advance(COOLDOWN)
    idp.rotate_keys()
    check(bridge, idp.mint())  # forced refetch at +60 s: discovery expired
    assert counts(idp) == (2, 3)


def test_jwks_failure_makes_the_next_attempt_rediscover(
    idp: MockIdP, build: Callable[[Handler], Bridge], events: Any, clock: FrozenClock, check: Check
) -> None:
    bridge = build(discovery_max_age(idp, 3600))
    check(bridge, idp.mint())
    clock.advance(MAX_AGE)
    idp.serve_jwks(b"garbage")
    check(bridge, idp.mint())  # stale-if-error
    assert counts(idp) == (1, 2)  # the cached jwks_uri was used
    assert events.names() == [FETCHED, FETCH_FAILED, STALE_SERVED]

    idp.serve_jwks(None)
    clock.advance(COOLDOWN)
    check(bridge, idp.mint())
    assert counts(idp) == (2, 3)  # discovered again although the document was fresh


def test_moved_jwks_uri_is_found_again_through_discovery(
    idp: MockIdP, build: Callable[[Handler], Bridge], clock: FrozenClock, check: Check
) -> None:
    bridge = build(discovery_max_age(idp, 3600))
    check(bridge, idp.mint())
    old_uri = idp.jwks_uri
    idp.jwks_uri = "https://idp.test/v2/keys"  # the issuer moves its key set; the old URL now 404s
    clock.advance(MAX_AGE)
    check(bridge, idp.mint())  # 404 at the old URL: the stale set serves
    urls = [str(r.url) for r in idp.requests]
    assert urls == [idp.discovery_url, old_uri, old_uri]
    clock.advance(COOLDOWN)
    check(bridge, idp.mint())
    urls = [str(r.url) for r in idp.requests]
    assert urls[3:] == [idp.discovery_url, "https://idp.test/v2/keys"]
    clock.advance(MAX_AGE)
    check(bridge, idp.mint())
    assert [str(r.url) for r in idp.requests][5:] == ["https://idp.test/v2/keys"]


def test_stale_set_serves_while_discovery_is_down(
    idp: MockIdP, discovering: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    check(discovering, idp.mint())
    clock.advance(MAX_AGE)  # both expired
    idp.outage(500)
    check(discovering, idp.mint())
    assert counts(idp) == (2, 1)
    assert events.names() == [FETCHED, FETCH_FAILED, STALE_SERVED]


@pytest.mark.parametrize("issuer", ["http://idp.test", "http://127.0.0.1:8080"])
def test_plain_http_discovery_is_refused_at_config_time(issuer: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Bridge.from_dict({"issuers": [{"provider": "oidc", "issuer": issuer, "audiences": ["a"]}]})
    assert exc.value.code == "config_error"
    assert "must be an https:// URL" in exc.value.message


def test_loopback_http_discovery_allowed_with_the_flag() -> None:
    config = {
        "issuers": [{"provider": "oidc", "issuer": "http://127.0.0.1:8080", "audiences": ["a"]}],
        "keys": {"allow_loopback_http": True},
    }
    Bridge.from_dict(config).close()
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        Bridge.from_dict(
            {**config, "issuers": [{"provider": "oidc", "issuer": "http://idp.test", "audiences": ["a"]}]}
        )


def test_non_url_issuer_needs_a_jwks_uri() -> None:
    with pytest.raises(ConfigError, match="issuer must be a URL"):
        Bridge.from_dict(
            {"issuers": [{"provider": "oidc", "issuer": "accounts.example", "audiences": ["a"]}]}
        )
    Bridge.from_dict(
        {
            "issuers": [
                {
                    "provider": "oidc",
                    "issuer": "accounts.example",
                    "audiences": ["a"],
                    "jwks_uri": "https://k.example/jwks",
                }
            ]
        }
    ).close()


def test_configured_trailing_slash_must_match_too(
    clock: FrozenClock, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    slashed = MockIdP(issuer="https://idp.test/", clock=clock)
    bridge = slashed.bridge(discovery=True)
    assert check(bridge, slashed.mint()).issuer == "https://idp.test/"  # identical: accepted

    other = MockIdP(issuer="https://idp.test/", clock=clock)
    serve_discovery(monkeypatch, other, issuer="https://idp.test")
    bridge = other.bridge(discovery=True)
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, other.mint())
    assert exc.value.reason == "discovery_issuer_mismatch"
    assert counts(other) == (1, 0)
