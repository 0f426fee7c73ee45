"""The per-issuer key cache (foundation issue section 4), through the public Bridge.

Every scenario runs on the sync path (``verify``) and the async path
(``averify``) through the ``check`` fixture. HTTP requests are counted exactly
at the mock issuer; time moves only through the injected ``FrozenClock``.

Default knobs (``KeysConfig``): ttl 600, min_ttl 60, max_ttl 86400,
refresh_cooldown 30, max_stale 86400, unknown_kid_ttl 60. The ``idp`` fixture
answers with ``Cache-Control: public, max-age=300``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from federation import Bridge, VerifiedToken
from federation.errors import BadSignature, InvalidToken, KeySetUnavailable, UnknownKey
from federation.events import (
    FETCH_FAILED,
    FETCHED,
    KEY_SKIPPED,
    REFETCH_RATE_LIMITED,
    STALE_SERVED,
    Event,
)
from federation.testing import FrozenClock, MockIdP, generate_signing_key, mock_transport

Check = Callable[[Bridge, str], VerifiedToken]
Handler = Callable[[httpx.Request], httpx.Response]

COOLDOWN = 30
MAX_AGE = 300


# Key generation dominates the run time (RSA ~40 ms): every test gets its own
# MockIdP, but the n-th key of an algorithm generated in a test is the same

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


def jwks_requests(idp: MockIdP) -> int:
    return len(idp.requests_to("jwks"))


@pytest.fixture
def build(idp: MockIdP, events: list[Event]) -> Iterator[Callable[..., Bridge]]:
    """A bridge trusting ``idp`` whose HTTP goes through ``handler`` (default: the mock issuer)."""
    built: list[Bridge] = []
    clients: list[httpx.Client] = []

    def factory(
        handler: Handler | None = None,
        *,
        keys: dict[str, Any] | None = None,
        issuer: dict[str, Any] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> Bridge:
        transport = httpx.MockTransport(handler or idp.handler)
        client = httpx.Client(transport=transport)
        clients.append(client)
        config: dict[str, Any] = {"issuers": [idp.issuer_config(**(issuer or {}))]}
        if keys:
            config["keys"] = keys
        bridge = Bridge.from_dict(
            config,
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=idp.clock,
            on_event=on_event or events.append,
        )
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()
    for client in clients:
        client.close()


def with_cache_control(idp: MockIdP, value: str | None, age: str | None = None) -> Handler:
    """The mock issuer, answering with ``Cache-Control: value`` (None: no header) and ``Age``."""

    def handler(request: httpx.Request) -> httpx.Response:
        response = idp.handler(request)
        if value is None:
            del response.headers["cache-control"]
        else:
            response.headers["cache-control"] = value
        if age is not None:
            response.headers["age"] = age
        return response

    return handler


def fetched(events: list[Event]) -> list[Event]:
    return [e for e in events if e.name == FETCHED]


# -- TTL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_age", "expected_ttl"),
    [(300, 300), (0, 60), (10**9, 86400), (None, 600)],
    ids=["max-age-300", "max-age-0-clamped-up", "huge-max-age-clamped-down", "absent-uses-ttl"],
)
def test_ttl_comes_from_max_age_clamped(
    idp: MockIdP,
    make_bridge: Callable[..., Bridge],
    events: Any,
    clock: FrozenClock,
    check: Check,
    max_age: int | None,
    expected_ttl: int,
) -> None:
    idp.cache_max_age = max_age
    bridge = make_bridge()
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 1
    assert [e.detail["ttl"] for e in fetched(events)] == [expected_ttl]

    clock.advance(expected_ttl - 1)  # fresh until the last second: many verifications, no fetch
    for _ in range(5):
        check(bridge, idp.mint())
    assert jwks_requests(idp) == 1

    clock.advance(1)  # expired: exactly one refetch
    check(bridge, idp.mint())
    check(bridge, idp.mint(alg="ES256"))
    assert jwks_requests(idp) == 2
    assert events.names() == [FETCHED, FETCHED]


@pytest.mark.parametrize(
    ("cache_control", "expected_ttl"),
    [
        ("no-store", 60),
        ("no-cache", 60),
        ("private, max-age=0, must-revalidate", 60),
        ('max-age="120"', 120),
        ("s-maxage=5000", 600),
        ("max-age=banana", 600),
        ("no-store, max-age=3600", 60),  # no-store wins over a max-age beside it
        ("max-age=3600, no-cache", 60),
        ("max-age=99999999999", 86400),  # eleven digits: clamped, not ignored
        ("max-age=" + "9" * 30, 86400),  # RFC 9111 §1.2.2: too large to represent is 2**31
        ("max-age=0000000000003600", 3600),  # leading zeros are no size
    ],
)
def test_ttl_header_variants(
    idp: MockIdP,
    build: Callable[..., Bridge],
    events: Any,
    clock: FrozenClock,
    check: Check,
    cache_control: str,
    expected_ttl: int,
) -> None:
    bridge = build(with_cache_control(idp, cache_control))
    check(bridge, idp.mint())
    assert [e.detail["ttl"] for e in fetched(events)] == [expected_ttl]
    clock.advance(expected_ttl - 1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 1
    clock.advance(1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2


@pytest.mark.parametrize(
    ("age", "expected_ttl"),
    [
        ("3500", 100),
        ("3590", 60),
        ("9" * 30, 60),
        ("0", 3600),
        ("banana", 3600),
        ("-5", 3600),
        ("1, 2", 3600),
        ("0000000000003500", 100),
    ],
)
def test_a_caches_age_counts_against_max_age(
    idp: MockIdP, build: Callable[..., Bridge], events: Any, check: Check, age: str, expected_ttl: int
) -> None:
    """RFC 9111 §4.2.3: a key set a CDN has held for Age seconds is fresh for max-age less
    that (a key the issuer dropped kept verifying for Age seconds more); invalid: ignored."""
    bridge = build(with_cache_control(idp, "public, max-age=3600", age=age))
    check(bridge, idp.mint())
    assert [e.detail["ttl"] for e in fetched(events)] == [expected_ttl]


@pytest.mark.parametrize(("max_age", "expected_ttl"), [(5000, 1000), (10, 100), (None, 200), (500, 500)])
def test_ttl_clamps_are_configurable(
    idp: MockIdP,
    make_bridge: Callable[..., Bridge],
    events: Any,
    clock: FrozenClock,
    check: Check,
    max_age: int | None,
    expected_ttl: int,
) -> None:
    idp.cache_max_age = max_age
    bridge = make_bridge(keys={"min_ttl": 100, "ttl": 200, "max_ttl": 1000})
    check(bridge, idp.mint())
    assert [e.detail["ttl"] for e in fetched(events)] == [expected_ttl]
    clock.advance(expected_ttl - 1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 1
    clock.advance(1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2


# -- unknown kid: forced refetch, cooldown, negative cache --------------------------------------


def test_rotation_verifies_after_exactly_one_forced_refetch(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)  # still fresh (max-age 300), cooldown since the first fetch passed
    old_token = idp.mint()
    new_key = idp.rotate_keys()
    token = idp.mint()

    verified = check(bridge, token)
    assert verified.key_id == new_key.kid
    requests = idp.requests_to("jwks")
    assert len(requests) == 2
    assert "cache-control" not in requests[0].headers
    assert requests[1].headers["cache-control"] == "no-cache"
    assert [e.detail["forced"] for e in fetched(events)] == [False, True]

    # keep_old=True: both keys serve from the new set, no more fetches.
    check(bridge, old_token)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2


def test_new_kid_right_after_a_forced_refetch_waits_for_the_cooldown(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    # Issue 10: the cooldown runs from the last *forced* refetch (the first unknown kid
    # after the cold fetch refetches at once; tests/test_hardening_keys.py).
    check(bridge, idp.mint())
    with pytest.raises(UnknownKey):
        check(bridge, idp.mint(kid="not-yet"))  # the one forced refetch
    assert jwks_requests(idp) == 2
    idp.rotate_keys()
    token = idp.mint()
    with pytest.raises(UnknownKey) as exc:
        check(bridge, token)
    assert exc.value.code == "unknown_key"
    assert exc.value.issuer == idp.issuer
    assert jwks_requests(idp) == 2
    assert events.names() == [FETCHED, FETCHED, REFETCH_RATE_LIMITED]
    assert events[-1].detail["cooldown"] == COOLDOWN

    clock.advance(COOLDOWN - 1)
    with pytest.raises(UnknownKey):
        check(bridge, token)
    assert jwks_requests(idp) == 2

    clock.advance(1)
    assert check(bridge, token).subject == "user-1"
    assert jwks_requests(idp) == 3


def test_unknown_kid_flood_costs_one_fetch_and_good_keys_keep_working(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    good = idp.mint(alg="ES256", lifetime=3600)
    check(bridge, good)
    clock.advance(COOLDOWN)
    kids = [secrets.token_hex(8) for _ in range(500)]
    for i, kid in enumerate(kids):
        with pytest.raises(UnknownKey) as exc:
            check(bridge, idp.mint(alg="ES256", kid=kid))
        assert exc.value.code == "unknown_key"
        if i % 50 == 0:
            assert check(bridge, good).key_id == idp.key_for("ES256").kid
    assert jwks_requests(idp) == 2  # the cold fetch and one forced refetch
    assert events.names().count(REFETCH_RATE_LIMITED) == 499
    assert events.names().count(FETCHED) == 2
    # Events never carry token contents.
    flat = repr([(e.name, e.issuer, dict(e.detail)) for e in events])
    assert not any(kid in flat for kid in kids)
    assert {e.issuer for e in events} == {idp.issuer}


def test_unknown_kid_flood_over_time_is_bounded_by_the_cooldown(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    idp.cache_max_age = 3600  # keep the set fresh: only forced refetches count
    good = idp.mint(alg="ES256", lifetime=3600)
    check(bridge, good)
    clock.advance(COOLDOWN)
    start = clock()
    for i in range(500):
        with pytest.raises(UnknownKey):
            check(bridge, idp.mint(alg="ES256", kid=f"random-{i}-{secrets.token_hex(4)}"))
        if i % 100 == 0:
            check(bridge, good)
        clock.advance(0.5)
    elapsed = clock() - start  # 250 s
    # forced refetches at +0, +30, ..., +240 s: one per cooldown window, never more.
    assert jwks_requests(idp) == 1 + 9
    assert jwks_requests(idp) - 1 <= elapsed // COOLDOWN + 1
    check(bridge, good)


def test_unknown_kid_is_negatively_cached(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    ghost = idp.mint(kid="ghost-kid", lifetime=3600)
    with pytest.raises(UnknownKey):
        check(bridge, ghost)
    assert jwks_requests(idp) == 2  # one forced refetch: the kid is still unknown

    clock.advance(COOLDOWN + 1)  # cooldown passed, but within unknown_kid_ttl (60 s)
    seen = len(events)
    for _ in range(3):
        with pytest.raises(UnknownKey) as exc:
            check(bridge, ghost)
        assert exc.value.code == "unknown_key"
    assert jwks_requests(idp) == 2
    assert len(events) == seen  # answered by the negative cache, not the rate limiter

    # A different unknown kid after the cooldown: exactly one fetch.
    with pytest.raises(UnknownKey):
        check(bridge, idp.mint(kid="other-kid"))
    assert jwks_requests(idp) == 3
    with pytest.raises(UnknownKey):
        check(bridge, idp.mint(kid="other-kid"))
    assert jwks_requests(idp) == 3


def test_negative_cache_entry_expires_after_unknown_kid_ttl(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    ghost = idp.mint(kid="ghost-kid", lifetime=3600)
    with pytest.raises(UnknownKey):
        check(bridge, ghost)
    assert jwks_requests(idp) == 2
    clock.advance(59)
    with pytest.raises(UnknownKey):
        check(bridge, ghost)
    assert jwks_requests(idp) == 2
    clock.advance(1)  # unknown_kid_ttl (60 s) over
    with pytest.raises(UnknownKey):
        check(bridge, ghost)
    assert jwks_requests(idp) == 3


def test_failed_forced_refetch_keeps_the_good_keys(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    idp.outage(500)
    with pytest.raises(KeySetUnavailable):  # a failed refetch proves no kid unknown
        check(bridge, idp.mint(kid="new-kid"))
    assert jwks_requests(idp) == 2
    failures = [e for e in events if e.name == FETCH_FAILED]
    assert [(e.detail["reason"], e.detail["forced"]) for e in failures] == [("http_500", True)]
    for alg in ("RS256", "ES256"):
        check(bridge, idp.mint(alg=alg))
    assert jwks_requests(idp) == 2


def test_a_rate_limited_unknown_kid_after_a_failed_refetch_is_unavailable(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    idp.outage(503)
    with pytest.raises(KeySetUnavailable):
        check(bridge, idp.mint(kid="first-new-kid"))
    with pytest.raises(KeySetUnavailable):  # inside the cooldown: no fetch, nothing proven
        check(bridge, idp.mint(kid="second-new-kid"))
    assert jwks_requests(idp) == 2
    idp.recover()
    clock.advance(COOLDOWN)
    with pytest.raises(UnknownKey):  # a refetch that succeeded proves it
        check(bridge, idp.mint(kid="third-new-kid"))
    with pytest.raises(UnknownKey):  # and inside the next cooldown it stays unknown_key
        check(bridge, idp.mint(kid="fourth-new-kid"))
    assert jwks_requests(idp) == 3


def test_kid_is_not_negatively_cached_when_the_forced_refetch_failed(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    """Only a successful refetch proves a kid unknown. Regression test: before
    b839d56 the kid was negatively cached after a *failed* refetch, so a real
    rotation was refused for ``unknown_kid_ttl`` (60 s), longer than the cooldown."""
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    idp.outage(503)
    idp.rotate_keys()
    token = idp.mint(lifetime=3600)
    with pytest.raises(KeySetUnavailable):  # 503, retried: the rotated key may well be real
        check(bridge, token)
    assert jwks_requests(idp) == 2
    idp.recover()
    clock.advance(COOLDOWN)
    assert check(bridge, token).key_id == idp.key_for().kid
    assert jwks_requests(idp) == 3


# -- stale-if-error ------------------------------------------------------------------------------


FAILURES: dict[str, tuple[Callable[[MockIdP], None], str]] = {
    "http_500": (lambda idp: idp.outage(500), "http_500"),
    "timeout": (lambda idp: idp.outage(timeout=True), "timeout"),
    "garbage": (lambda idp: idp.outage(body=b"garbage"), "not_json"),
    "empty_set": (lambda idp: idp.serve_jwks({"keys": []}), "no_usable_key"),
    "symmetric_only": (lambda idp: idp.serve_jwks({"keys": [{"kty": "oct", "k": "AA"}]}), "no_usable_key"),
}


def repair(idp: MockIdP) -> None:
    idp.recover()
    idp.serve_jwks(None)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_stale_if_error_serves_last_good_set_up_to_max_stale(
    idp: MockIdP,
    make_bridge: Callable[..., Bridge],
    events: Any,
    clock: FrozenClock,
    check: Check,
    failure: str,
) -> None:
    breaker, reason = FAILURES[failure]
    bridge = make_bridge(keys={"max_stale": 1000})
    t0 = clock()
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 1

    clock.advance(MAX_AGE)  # expired
    breaker(idp)
    assert check(bridge, idp.mint()).subject == "user-1"
    assert check(bridge, idp.mint(alg="ES256")).algorithm == "ES256"
    assert jwks_requests(idp) == 2
    assert events.names() == [FETCHED, FETCH_FAILED, STALE_SERVED]
    assert events[1].detail["reason"] == reason
    assert events[2].detail["reason"] == reason

    # Failed refreshes are retried at most once per cooldown.
    clock.advance(COOLDOWN - 1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2
    clock.advance(1)
    check(bridge, idp.mint())
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 3

    # Still served on the last second of max_stale (TTL 300 + max_stale 1000).
    clock.set(t0 + MAX_AGE + 1000 - 1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 4

    # Beyond max_stale: unavailable (503), not an invalid token (401).
    clock.advance(1)
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, idp.mint())
    assert not isinstance(exc.value, InvalidToken)
    assert exc.value.code == "keyset_unavailable"
    assert exc.value.issuer == idp.issuer
    assert exc.value.reason == reason
    assert jwks_requests(idp) == 4  # within the cooldown of the last failure: no request
    clock.advance(COOLDOWN)
    with pytest.raises(KeySetUnavailable):
        check(bridge, idp.mint())
    assert jwks_requests(idp) == 5

    # Recovery resumes normal service: one fetch, then fresh again.
    repair(idp)
    clock.advance(COOLDOWN)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 6
    assert events.names()[-1] == FETCHED
    check(bridge, idp.mint())
    clock.advance(MAX_AGE - 1)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 6


def test_a_stale_set_cannot_prove_a_kid_unknown(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    """A token whose kid the set kept through an outage lacks is refused, as unavailable keys
    (503, to retry), not as a bad token (401): the issuer may have rotated meanwhile. Its own
    tokens still verify from the stale set."""
    check(bridge, idp.mint())
    clock.advance(MAX_AGE)
    idp.outage(502)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, idp.mint(kid="not-in-the-stale-set"))
    assert exc.value.code == "keyset_unavailable"
    assert jwks_requests(idp) == 2


@pytest.mark.parametrize("failure", ["http_500", "timeout", "garbage", "empty_set"])
def test_cold_start_failure_is_unavailable_and_backs_off(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check, failure: str
) -> None:
    breaker, reason = FAILURES[failure]
    breaker(idp)
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, idp.mint())
    assert not isinstance(exc.value, InvalidToken)
    assert (exc.value.code, exc.value.reason, exc.value.issuer) == ("keyset_unavailable", reason, idp.issuer)
    assert jwks_requests(idp) == 1
    assert events.names() == [FETCH_FAILED]  # nothing stale to serve

    # The back-off window: no further request at all.
    for _ in range(5):
        with pytest.raises(KeySetUnavailable):
            check(bridge, idp.mint())
    clock.advance(COOLDOWN - 1)
    with pytest.raises(KeySetUnavailable):
        check(bridge, idp.mint())
    assert jwks_requests(idp) == 1

    clock.advance(1)  # after it, one retry
    with pytest.raises(KeySetUnavailable):
        check(bridge, idp.mint())
    assert jwks_requests(idp) == 2

    repair(idp)
    clock.advance(COOLDOWN)
    assert check(bridge, idp.mint()).issuer == idp.issuer
    assert jwks_requests(idp) == 3


# -- rotation and removal ---------------------------------------------------------------------------


def test_dropped_key_stops_verifying_at_once_after_expiry(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    old = idp.key_for("RS256")
    check(bridge, idp.mint())
    idp.rotate_keys(keep_old=False)
    old_token = idp.mint(key=old, lifetime=3600)
    check(bridge, old_token)  # the cached set still holds it while fresh
    assert jwks_requests(idp) == 1

    clock.advance(MAX_AGE)
    with pytest.raises(UnknownKey) as exc:
        check(bridge, old_token)  # the refresh replaced the set whole
    assert exc.value.code == "unknown_key"
    assert jwks_requests(idp) == 2
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2


def test_dropped_key_stops_verifying_after_a_forced_refetch(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    old = idp.key_for("RS256")
    check(bridge, idp.mint())
    clock.advance(COOLDOWN)
    old_token = idp.mint(key=old, lifetime=3600)
    idp.rotate_keys(keep_old=False)
    check(bridge, idp.mint())  # new kid: forced refetch
    assert jwks_requests(idp) == 2
    with pytest.raises(UnknownKey) as exc:
        check(bridge, old_token)
    assert exc.value.code == "unknown_key"
    assert jwks_requests(idp) == 2


def test_removed_key_stops_verifying(idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check) -> None:
    es = idp.key_for("ES256")
    check(bridge, idp.mint(alg="ES256"))
    idp.remove_key(es.kid)
    clock.advance(MAX_AGE)
    with pytest.raises(UnknownKey) as exc:
        check(bridge, idp.mint(alg="ES256"))  # still signed by the unpublished key
    assert exc.value.code == "unknown_key"
    assert jwks_requests(idp) == 2
    check(bridge, idp.mint(alg="RS256"))
    assert jwks_requests(idp) == 2


# -- a key replaced under the same kid -------------------------------------------------------------


def test_a_key_replaced_under_the_same_kid_verifies_after_one_forced_refetch(
    idp: MockIdP, bridge: Bridge, events: Any, check: Check
) -> None:
    check(bridge, idp.mint())
    old_token = idp.mint(lifetime=3600)
    old = idp.key_for()
    new = idp.replace_key()
    assert new.kid == old.kid and new.public_jwk["n"] != old.public_jwk["n"]

    verified = check(bridge, idp.mint(sub="after-restart"))  # the cached key fails, the refetched one signs
    assert verified.subject == "after-restart" and verified.key_id == old.kid
    assert jwks_requests(idp) == 2
    assert [e.detail["forced"] for e in fetched(events)] == [False, True]
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 2

    # The old key is gone: its token fails, and within the cooldown asks for nothing more.
    with pytest.raises(BadSignature) as exc:
        check(bridge, old_token)
    assert exc.value.code == "bad_signature" and exc.value.issuer == idp.issuer
    assert jwks_requests(idp) == 2
    assert events[-1].name == REFETCH_RATE_LIMITED and events[-1].detail["cause"] == "bad_signature"


def test_forged_signatures_under_a_known_kid_cost_at_most_one_refetch_per_cooldown(
    idp: MockIdP, bridge: Bridge, events: Any, clock: FrozenClock, check: Check
) -> None:
    good = idp.mint(alg="ES256", lifetime=3600)
    check(bridge, good)
    kid = idp.key_for("ES256").kid
    forger = generate_signing_key("ES256", kid=kid)  # the right kid, another key
    forged = [idp.mint(alg="ES256", key=forger, sub=f"victim-{i}") for i in range(200)]
    for i, token in enumerate(forged):
        with pytest.raises(BadSignature) as exc:
            check(bridge, token)
        assert exc.value.code == "bad_signature"
        if i % 50 == 0:
            assert check(bridge, good).key_id == kid
    assert jwks_requests(idp) == 2  # the cold fetch and the one refetch the first forgery was allowed
    assert events.names().count(REFETCH_RATE_LIMITED) == 199

    clock.advance(COOLDOWN)
    for token in forged[:20]:
        with pytest.raises(BadSignature):
            check(bridge, token)
    assert jwks_requests(idp) == 3
    flat = repr([(e.name, e.issuer, dict(e.detail)) for e in events])
    assert not any(token in flat or token.split(".")[2] in flat for token in forged)


def test_a_bad_signature_while_the_refetch_fails_stays_a_bad_signature(
    idp: MockIdP, bridge: Bridge, events: Any, check: Check
) -> None:
    good = idp.mint(lifetime=3600)
    check(bridge, good)
    idp.replace_key()
    idp.outage(503)
    with pytest.raises(BadSignature):
        check(bridge, idp.mint())  # the key it needs cannot be had; the one held does not sign it
    assert jwks_requests(idp) == 2
    assert FETCH_FAILED in events.names()
    check(bridge, good)  # the set held keeps serving its own tokens
    idp.recover()
    with pytest.raises(BadSignature):
        check(bridge, idp.mint())  # inside the cooldown of that failed refetch
    assert jwks_requests(idp) == 2


def test_a_kid_less_token_verifies_after_its_issuers_only_key_is_replaced(
    idp: MockIdP, bridge: Bridge, check: Check
) -> None:
    check(bridge, idp.mint(headers={"kid": None}))
    idp.replace_key()
    verified = check(bridge, idp.mint(sub="kid-less", headers={"kid": None}))
    assert verified.subject == "kid-less" and verified.key_id is None
    assert jwks_requests(idp) == 2


def test_forged_signatures_buy_no_extra_attempt_while_the_issuer_fails(
    idp: MockIdP, bridge: Bridge, clock: FrozenClock, check: Check
) -> None:
    good = idp.mint(lifetime=7200)
    check(bridge, good)
    forged = idp.mint(key=generate_signing_key("RS256", kid=idp.key_for().kid), lifetime=7200)
    clock.advance(MAX_AGE)  # the set expires while the issuer is down
    idp.outage(503)
    per_window = []
    for _ in range(4):
        before = jwks_requests(idp)
        check(bridge, good)  # stale-if-error: the held set serves, one attempt per cooldown
        for _ in range(5):
            with pytest.raises(BadSignature):
                check(bridge, forged)
        per_window.append(jwks_requests(idp) - before)
        clock.advance(COOLDOWN)
    assert per_window == [1, 1, 1, 1]


def test_a_kid_that_now_names_another_type_of_key_is_not_retried(
    idp: MockIdP, bridge: Bridge, check: Check
) -> None:
    check(bridge, idp.mint())
    kid = idp.key_for().kid
    forged = idp.mint(key=generate_signing_key("RS256", kid=kid))
    idp.serve_jwks({"keys": [dict(generate_signing_key("ES256", kid=kid).public_jwk)]})
    with pytest.raises(BadSignature):
        check(bridge, forged)  # the refetched set's key under that kid does not fit RS256
    assert jwks_requests(idp) == 2


# -- events ----------------------------------------------------------------------------------------


def test_one_bad_entry_is_skipped_with_an_event(
    idp: MockIdP, bridge: Bridge, events: Any, check: Check
) -> None:
    idp.serve_jwks({"keys": [{"kty": "oct", "k": "AA"}, *idp.jwks()["keys"]]})
    check(bridge, idp.mint())
    check(bridge, idp.mint(alg="ES256"))
    assert events.names() == [KEY_SKIPPED, FETCHED]
    assert events[0].detail["reason"].startswith("key #0 skipped")
    assert events[1].detail["keys"] == 2
    assert jwks_requests(idp) == 1


def test_a_raising_sink_never_breaks_verification(
    idp: MockIdP, build: Callable[..., Bridge], clock: FrozenClock, check: Check
) -> None:
    calls: list[str] = []

    def sink(event: Event) -> None:
        calls.append(event.name)
        raise RuntimeError("broken monitoring")

    bridge = build(on_event=sink)
    check(bridge, idp.mint())
    with pytest.raises(UnknownKey):  # the forced refetch (issue 10: at once after a fetch)
        check(bridge, idp.mint(kid="unknown"))
    with pytest.raises(UnknownKey):  # refetch_rate_limited goes through the sink too
        check(bridge, idp.mint(kid="unknown-2"))
    clock.advance(MAX_AGE)
    idp.outage(500)
    check(bridge, idp.mint())  # fetch_failed + stale_served
    assert calls == [FETCHED, FETCHED, REFETCH_RATE_LIMITED, FETCH_FAILED, STALE_SERVED]


def test_default_sink_logs_on_the_federation_logger(
    idp: MockIdP, clock: FrozenClock, caplog: pytest.LogCaptureFixture, check: Check
) -> None:
    bridge = idp.bridge()  # no on_event: the default sink
    caplog.set_level(logging.INFO, logger="federation")
    check(bridge, idp.mint())
    clock.advance(MAX_AGE)
    idp.outage(500)
    check(bridge, idp.mint())
    records = [r for r in caplog.records if r.name == "federation"]
    assert [r.federation_event for r in records] == [FETCHED, FETCH_FAILED, STALE_SERVED]  # type: ignore[attr-defined]
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING, logging.WARNING]
    assert all(r.federation_issuer == idp.issuer for r in records)  # type: ignore[attr-defined]
    assert "reason=http_500" in records[1].getMessage()
    bridge.close()


# -- warm-up ----------------------------------------------------------------------------------------


@pytest.fixture
def idp2(clock: FrozenClock) -> MockIdP:
    return MockIdP(issuer="https://idp2.test", audience="client-2", clock=clock)


@pytest.fixture
def two_issuers(idp: MockIdP, idp2: MockIdP, clock: FrozenClock, events: Any) -> Iterator[Bridge]:
    transport = mock_transport(idp, idp2)
    client = httpx.Client(transport=transport)
    bridge = Bridge.from_dict(
        {"issuers": [idp.issuer_config(), idp2.issuer_config()]},
        http_client=client,
        async_http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
        on_event=events.append,
    )
    yield bridge
    bridge.close()
    client.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_reports_each_issuer(
    idp: MockIdP, idp2: MockIdP, two_issuers: Bridge, check: Check, mode: str
) -> None:
    idp2.outage(503)
    report = two_issuers.warm_up() if mode == "sync" else asyncio.run(two_issuers.awarm_up())
    assert not report.ok
    assert report.succeeded == (idp.issuer,)
    assert dict(report.failed) == {idp2.issuer: "http_503"}
    assert (jwks_requests(idp), jwks_requests(idp2)) == (1, 1)

    # The good issuer's keys are cached: no new request.
    check(two_issuers, idp.mint())
    check(two_issuers, idp.mint(alg="ES256"))
    assert jwks_requests(idp) == 1
    # The failed issuer is in its back-off window: unavailable, no request.
    with pytest.raises(KeySetUnavailable) as exc:
        check(two_issuers, idp2.mint())
    assert exc.value.issuer == idp2.issuer
    assert jwks_requests(idp2) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_all_good(idp: MockIdP, idp2: MockIdP, two_issuers: Bridge, check: Check, mode: str) -> None:
    report = two_issuers.warm_up() if mode == "sync" else asyncio.run(two_issuers.awarm_up())
    assert report.ok
    assert set(report.succeeded) == {idp.issuer, idp2.issuer}
    assert dict(report.failed) == {}
    check(two_issuers, idp.mint())
    check(two_issuers, idp2.mint())
    assert (jwks_requests(idp), jwks_requests(idp2)) == (1, 1)


def test_averify_without_an_injected_async_client_uses_httpx(idp: MockIdP, clock: FrozenClock) -> None:
    """No async client injected: the bridge uses short-lived httpx clients (served here by respx)."""
    bridge = Bridge.from_dict(idp.bridge_config(), clock=clock, on_event=lambda e: None)
    with idp:
        assert asyncio.run(bridge.averify(idp.mint())).issuer == idp.issuer
        assert bridge.verify(idp.mint(alg="ES256")).algorithm == "ES256"
    assert jwks_requests(idp) == 1
    bridge.close()
