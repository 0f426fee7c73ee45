"""Issue 10 §1 (key cache and key sets) and the key-cache "Noise" items.

Each test here failed on the code before its fix. HTTP goes through the mock
issuer (``MockIdP``) only; time moves through the injected ``FrozenClock``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from federation.events import FETCHED, Event
from federation.testing import FrozenClock, MockIdP

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


def jwks_requests(idp: MockIdP) -> int:
    return len(idp.requests_to("jwks"))


# -- on_event sinks that evaluate as false ----------------------------------------------------


class FalsySink(list[Event]):
    """An empty list is falsy: ``on_event or log_event`` used to drop it for the logger."""

    def __call__(self, event: Event) -> None:
        self.append(event)


def test_a_falsy_event_sink_is_still_used(idp: MockIdP) -> None:
    sink = FalsySink()
    assert not sink
    bridge = idp.bridge(on_event=sink)
    bridge.verify(idp.mint())
    assert [e.name for e in sink] == [FETCHED]
    bridge.close()


class ZeroLengthSink:
    def __init__(self) -> None:
        self.names: list[str] = []

    def __len__(self) -> int:
        return 0

    def __call__(self, event: Event) -> None:
        self.names.append(event.name)


def test_a_zero_length_event_sink_is_still_used_async(idp: MockIdP) -> None:
    sink = ZeroLengthSink()
    bridge = idp.bridge(on_event=sink)
    asyncio.run(bridge.averify(idp.mint()))
    assert sink.names == [FETCHED]
    bridge.close()


# -- warm_up fetches each key set once -----------------------------------------------------------


@pytest.mark.parametrize("provider", ["cognito", "google"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_fetches_a_shared_key_set_once(provider: str, mode: str, events: list[Event]) -> None:
    idp = MockIdP.for_provider(provider)
    bridge = idp.bridge(on_event=events.append)
    assert len(bridge.issuers) == 2  # two issuer strings, one key set
    report = bridge.warm_up() if mode == "sync" else asyncio.run(bridge.awarm_up())
    assert report.ok
    assert set(report.succeeded) == set(bridge.issuers)  # the report still lists every string
    assert jwks_requests(idp) == 1
    assert [e.name for e in events] == [FETCHED]
    bridge.verify(idp.mint())
    assert jwks_requests(idp) == 1
    bridge.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_failure_is_reported_for_every_issuer_string(mode: str) -> None:
    idp = MockIdP.for_provider("google")
    bridge = idp.bridge(on_event=lambda e: None)
    idp.outage(503)
    report = bridge.warm_up() if mode == "sync" else asyncio.run(bridge.awarm_up())
    assert not report.ok
    assert report.succeeded == ()
    assert set(report.failed) == set(bridge.issuers)
    assert set(report.failed.values()) == {"http_503"}
    assert jwks_requests(idp) == 1
    bridge.close()


# -- keys that share a kid -----------------------------------------------------------------------


def _jwk(key: Any, **changes: Any) -> dict[str, Any]:
    jwk = dict(key.public_jwk)
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return jwk


def test_one_key_listed_once_per_alg_is_one_key(idp: MockIdP, check: Any) -> None:
    """Keycloak lists one RSA key once per algorithm under one kid: one key, the union of the algs."""
    from federation._rfc7517 import import_jwks

    rs = idp.key_for("RS256")
    document = {"keys": [_jwk(rs, alg="RS256"), _jwk(rs, alg="PS256"), _jwk(idp.key_for("ES256"))]}
    keyset, warnings = import_jwks(document, max_keys=100)
    assert warnings == []
    assert len(keyset) == 2
    key = keyset.find(rs.kid, "PS256")
    assert key is not None and key.algorithms == {"RS256", "PS256"}
    assert keyset.find(rs.kid, "RS256") is key

    idp.serve_jwks(document)
    bridge = idp.bridge(on_event=lambda e: None)
    assert check(bridge, idp.mint(alg="RS256")).algorithm == "RS256"
    assert check(bridge, idp.mint(alg="PS256", key=rs)).algorithm == "PS256"
    assert jwks_requests(idp) == 1
    bridge.close()


def test_one_key_listed_with_and_without_alg_fits_every_algorithm_of_its_type(idp: MockIdP) -> None:
    from federation._rfc7517 import import_jwks
    from federation.errors import DisallowedAlgorithm

    rs = idp.key_for("RS256")
    for entries in ([_jwk(rs, alg="RS256"), _jwk(rs, alg=None)], [_jwk(rs, alg=None), _jwk(rs, alg="RS256")]):
        keyset, warnings = import_jwks({"keys": entries}, max_keys=100)
        assert warnings == []
        assert len(keyset) == 1
        key = keyset.find(rs.kid, "PS512")
        assert key is not None
        assert key.algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
        with pytest.raises(DisallowedAlgorithm):
            keyset.find(rs.kid, "ES256")


def test_keys_of_different_types_under_one_kid_are_chosen_by_alg(idp: MockIdP, check: Any) -> None:
    """RFC 7517 §4.5: keys of different types may share a kid; the token's alg picks one."""
    from federation._rfc7517 import import_jwks
    from federation.errors import DisallowedAlgorithm

    rs, es = idp.key_for("RS256"), idp.key_for("ES256")
    document = {"keys": [_jwk(rs, kid="shared"), _jwk(es, kid="shared")]}
    keyset, warnings = import_jwks(document, max_keys=100)
    assert warnings == []
    assert keyset.kids == {"shared"}
    rsa_key, ec_key = keyset.find("shared", "RS256"), keyset.find("shared", "ES256")
    assert rsa_key is not None and rsa_key.kty == "RSA"
    assert ec_key is not None and ec_key.kty == "EC"
    with pytest.raises(DisallowedAlgorithm):
        keyset.find("shared", "ES384")

    idp.serve_jwks(document)
    bridge = idp.bridge(on_event=lambda e: None)
    assert check(bridge, idp.mint(alg="RS256", kid="shared")).algorithm == "RS256"
    assert check(bridge, idp.mint(alg="ES256", kid="shared")).algorithm == "ES256"
    # The EC key never verifies an RSA signature and vice versa.
    from federation.errors import BadSignature

    other = idp.mint(alg="ES256", kid="shared", key=generate_key("ES256"))
    with pytest.raises(BadSignature):
        check(bridge, other)
    bridge.close()


def generate_key(alg: str) -> Any:
    from federation.testing import generate_signing_key

    return generate_signing_key(alg)


def test_two_different_keys_of_one_type_under_one_kid_stay_ambiguous(idp: MockIdP) -> None:
    from federation._rfc7517 import import_jwks

    rs = idp.key_for("RS256")
    other = generate_key("PS256")  # another RSA key: a different alg does not make it unambiguous
    es = idp.key_for("ES256")
    keyset, warnings = import_jwks(
        {"keys": [_jwk(rs), _jwk(other, kid=rs.kid), _jwk(es, kid=rs.kid)]}, max_keys=100
    )
    assert len(keyset) == 0  # the whole kid is ambiguous, as before
    assert len(warnings) == 1 and "kid" in warnings[0]


# -- non-minimal RSA integers ---------------------------------------------------------------------


def _padded(value: str) -> str:
    import base64

    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return base64.urlsafe_b64encode(b"\x00" + raw).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("member", ["n", "e"])
def test_rsa_integers_with_a_leading_zero_octet_load_with_a_warning(
    idp: MockIdP, events: Any, check: Any, member: str
) -> None:
    from federation.events import KEY_TOLERATED

    rs = idp.key_for("RS256")
    jwk = _jwk(rs, **{member: _padded(rs.public_jwk[member])})
    idp.serve_jwks({"keys": [jwk]})
    bridge = idp.bridge(on_event=events.append)
    assert check(bridge, idp.mint()).key_id == rs.kid
    tolerated = [e for e in events if e.name == KEY_TOLERATED]
    assert len(tolerated) == 1
    assert tolerated[0].detail["kid"] == rs.kid
    assert rs.kid in tolerated[0].detail["reason"] and "minimal" in tolerated[0].detail["reason"]
    bridge.close()


def test_non_minimal_rsa_key_is_the_same_number(idp: MockIdP) -> None:
    from federation._rfc7517 import import_jwk

    rs = idp.key_for("RS256")
    padded = import_jwk(_jwk(rs, n=_padded(rs.public_jwk["n"]), e="AAEAAQ"))
    assert padded.same_key_as(import_jwk(_jwk(rs)))


# -- noise: encryption keys and skipped keys once per key-set version ------------------------------


def test_encryption_key_is_debug_once_per_key_set_version(
    idp: MockIdP, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from federation.events import KEY_IGNORED

    caplog.set_level(logging.DEBUG, logger="federation")
    enc = _jwk(generate_key("RS256"), use="enc", alg="RSA-OAEP", kid="enc-1")
    sink: list[Event] = []

    def serve() -> None:
        idp.serve_jwks({"keys": [*idp.jwks()["keys"], enc]})

    serve()
    bridge = idp.bridge()  # the default sink: the federation logger
    sunk = idp.bridge(on_event=sink.append)
    for b in (bridge, sunk):
        b.verify(idp.mint())
    for _ in range(3):  # scheduled refreshes of the same content
        clock.advance(400)
        bridge.verify(idp.mint())
        sunk.verify(idp.mint())
    records = [r for r in caplog.records if r.name == "federation"]
    assert not [r for r in records if r.levelno >= logging.WARNING]
    ignored = [r for r in records if getattr(r, "federation_event", None) == KEY_IGNORED]
    assert len(ignored) == 1 and ignored[0].levelno == logging.DEBUG
    assert [e.name for e in sink].count(KEY_IGNORED) == 1
    assert [e.name for e in sink].count(FETCHED) == 4

    idp.rotate_keys()  # a new key-set version: said once more
    serve()
    clock.advance(400)
    sunk.verify(idp.mint())
    assert [e.name for e in sink].count(KEY_IGNORED) == 2
    bridge.close()
    sunk.close()


def test_skipped_key_warns_once_per_key_set_version(idp: MockIdP, clock: FrozenClock, events: Any) -> None:
    from federation.events import KEY_SKIPPED

    idp.serve_jwks({"keys": [{"kty": "oct", "k": "AA"}, *idp.jwks()["keys"]]})
    bridge = idp.bridge(on_event=events.append)
    bridge.verify(idp.mint())
    clock.advance(400)
    bridge.verify(idp.mint())
    assert events.names() == [KEY_SKIPPED, FETCHED, FETCHED]
    bridge.close()


# -- rotation right after a fetch ---------------------------------------------------------------

COOLDOWN = 30


def test_rotation_right_after_the_cold_fetch_refetches_at_once(
    idp: MockIdP, events: Any, clock: FrozenClock, check: Any
) -> None:
    from federation.events import REFETCH_RATE_LIMITED

    bridge = idp.bridge(on_event=events.append)
    check(bridge, idp.mint())
    new_key = idp.rotate_keys()
    assert check(bridge, idp.mint()).key_id == new_key.kid  # no cooldown wait after the cold fetch
    assert jwks_requests(idp) == 2
    assert [e.detail["forced"] for e in events if e.name == FETCHED] == [False, True]

    # After a scheduled (TTL) refresh, again: the first unknown kid refetches at once.
    clock.advance(300)
    check(bridge, idp.mint())
    assert jwks_requests(idp) == 3
    newer = idp.rotate_keys()
    assert check(bridge, idp.mint()).key_id == newer.kid
    assert jwks_requests(idp) == 4
    assert REFETCH_RATE_LIMITED not in [e.name for e in events]
    bridge.close()


def test_forced_refetch_that_drops_a_key_stops_it_at_once(idp: MockIdP, check: Any) -> None:
    from federation.errors import UnknownKey

    old = idp.key_for("RS256")
    bridge = idp.bridge(on_event=lambda e: None)
    check(bridge, idp.mint())
    old_token = idp.mint(key=old, lifetime=3600)
    idp.rotate_keys(keep_old=False)
    check(bridge, idp.mint())  # new kid right after the cold fetch: forced refetch
    assert jwks_requests(idp) == 2
    with pytest.raises(UnknownKey):
        check(bridge, old_token)
    assert jwks_requests(idp) == 2  # the dropped kid costs nothing more (cooldown)
    bridge.close()


def test_flood_right_after_a_fetch_still_costs_one_fetch_per_cooldown(
    idp: MockIdP, events: Any, clock: FrozenClock, check: Any
) -> None:
    import secrets

    from federation.errors import UnknownKey
    from federation.events import REFETCH_RATE_LIMITED

    idp.cache_max_age = 3600  # the set stays fresh: only forced refetches count
    bridge = idp.bridge(on_event=events.append)
    good = idp.mint(alg="ES256", lifetime=3600)
    check(bridge, good)
    for i in range(200):
        with pytest.raises(UnknownKey):
            check(bridge, idp.mint(alg="ES256", kid=secrets.token_hex(8)))
        if i % 50 == 0:
            check(bridge, good)
        clock.advance(0.5)  # 100 s in all
    # the cold fetch, then forced refetches at +0, +30, +60, +90 s
    assert jwks_requests(idp) == 1 + 4
    assert [e.name for e in events].count(REFETCH_RATE_LIMITED) == 200 - 4
    bridge.close()


def _gated(idp: MockIdP) -> tuple[Any, Any]:
    """A transport whose second key-set response waits for ``gate`` (so callers pile up)."""
    import threading

    import httpx

    gate = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if idp.handles(request) and len(idp.requests_to("jwks")) >= 1:
            gate.wait(10)
        return idp.handler(request)

    return httpx.MockTransport(handler), gate


def test_twenty_threads_with_a_freshly_rotated_kid_cause_one_refetch(idp: MockIdP) -> None:
    import threading
    import time

    import httpx

    transport, gate = _gated(idp)
    bridge = idp.bridge(http_client=httpx.Client(transport=transport), on_event=lambda e: None)
    bridge.verify(idp.mint())
    new_key = idp.rotate_keys()
    token = idp.mint()
    results: list[str | None] = []
    start = threading.Barrier(20)

    def worker() -> None:
        start.wait()
        results.append(bridge.verify(token).key_id)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # let them pile up on the refetch (correctness does not depend on it)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [new_key.kid] * 20
    assert jwks_requests(idp) == 2
    bridge.close()


def test_twenty_tasks_with_a_freshly_rotated_kid_cause_one_refetch(idp: MockIdP) -> None:
    import httpx

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # the refetch takes a while: the other tasks join it
        return idp.handler(request)

    bridge = idp.bridge(
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), on_event=lambda e: None
    )

    async def main() -> list[str | None]:
        await bridge.averify(idp.mint())
        new_key = idp.rotate_keys()
        token = idp.mint()
        results = await asyncio.gather(*(bridge.averify(token) for _ in range(20)))
        assert {vt.key_id for vt in results} == {new_key.kid}
        return [vt.key_id for vt in results]

    assert len(asyncio.run(main())) == 20
    assert jwks_requests(idp) == 2
    bridge.close()


# -- keyset_unavailable names the URL it tried ---------------------------------------------------


def test_keyset_unavailable_names_the_key_set_url(idp: MockIdP, events: Any, check: Any) -> None:
    from federation.errors import KeySetUnavailable
    from federation.events import FETCH_FAILED

    bridge = idp.bridge(on_event=events.append)
    idp.outage(503)
    token = idp.mint()
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, token)
    assert exc.value.code == "keyset_unavailable"
    assert exc.value.reason == "http_503"
    assert exc.value.url == idp.jwks_uri
    assert str(exc.value) == f"the issuer's keys are unavailable ({idp.jwks_uri}: http_503)"
    assert not any(part in str(exc.value) for part in token.split("."))
    failed = [e for e in events if e.name == FETCH_FAILED]
    assert failed[0].detail["url"] == idp.jwks_uri
    # Within the back-off window the answer still names the URL.
    with pytest.raises(KeySetUnavailable) as again:
        check(bridge, token)
    assert again.value.url == idp.jwks_uri and idp.jwks_uri in str(again.value)
    bridge.close()


def test_keyset_unavailable_names_the_discovery_url(idp: MockIdP, check: Any) -> None:
    from federation.errors import KeySetUnavailable

    bridge = idp.bridge(discovery=True, on_event=lambda e: None)
    idp.outage(500)
    with pytest.raises(KeySetUnavailable) as exc:
        check(bridge, idp.mint())
    assert exc.value.url == idp.discovery_url
    assert f"({idp.discovery_url}: http_500)" in str(exc.value)
    bridge.close()


def test_keyset_unavailable_url_drops_credentials_and_query() -> None:
    from federation._keys._documents import display_url

    assert display_url("https://user:pw@idp.test:8443/jwks?sig=secret#x") == "https://idp.test:8443/jwks"


# -- an abandoned async fetch never wedges the cache ------------------------------------------------

FAST = {"timeout": 0.1}  # lease = 4 x timeout + 1 = 1.4 s: how long an abandoned flight holds


class StallFirst:
    """An async handler that never answers the first key request (its loop is abandoned)."""

    def __init__(self, idp: MockIdP) -> None:
        self.idp = idp
        self.calls = 0

    async def __call__(self, request: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            await asyncio.Event().wait()  # forever: nobody runs this loop again
        return self.idp.handler(request)


def _abandon_a_fetch(bridge: Any, token: str, close: bool) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(asyncio.TimeoutError):
            # A sync wrapper around run_until_complete whose caller timed out: the loop stops
            # while the shielded fetch task is pending.
            loop.run_until_complete(asyncio.wait_for(bridge.averify(token), 0.05))
    finally:
        if close:
            loop.close()


@pytest.mark.parametrize("close", [False, True], ids=["loop_stopped", "loop_closed"])
@pytest.mark.parametrize("taker", ["thread", "other_loop"])
def test_an_abandoned_async_fetch_is_taken_over(idp: MockIdP, close: bool, taker: str) -> None:
    import threading

    import httpx

    stall = StallFirst(idp)
    bridge = idp.bridge(
        config=idp.bridge_config(keys=FAST),
        http_client=idp.client(),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(stall)),
        on_event=lambda e: None,
    )
    token = idp.mint()
    _abandon_a_fetch(bridge, token, close)
    assert stall.calls == 1 and jwks_requests(idp) == 0

    results: list[Any] = []
    if taker == "thread":
        worker = threading.Thread(target=lambda: results.append(bridge.verify(token)))
        worker.start()
        worker.join(10)
    else:
        results.append(asyncio.run(bridge.averify(token)))
    # Taken over at the lease's end (never KeySetUnavailable while the issuer answers).
    assert [vt.subject for vt in results] == ["user-1"]
    assert jwks_requests(idp) == 1
    # Everyone else is served from the cache now, threads and loops alike.
    assert bridge.verify(idp.mint()).issuer == idp.issuer
    assert asyncio.run(bridge.averify(idp.mint())).issuer == idp.issuer
    assert jwks_requests(idp) == 1
    bridge.close()


def test_a_stale_owner_cannot_release_or_write_after_a_takeover() -> None:
    from federation._keys._flight import Claim, SingleFlight

    now = [0.0]
    flight = SingleFlight(lambda: 0, lease=5, clock=lambda: now[0])
    claim, stale = flight.claim(None)
    assert claim is Claim.FETCH and stale is not None
    assert flight.claim(None)[0] is Claim.JOIN
    now[0] = 5.0  # the lease ran out: the owner is presumed gone
    claim, fresh = flight.claim(None)
    assert claim is Claim.FETCH and fresh is not None and fresh is not stale
    flight.release(stale)  # late, by the stale owner: ignored
    assert flight.in_flight and flight.owns(fresh) and not flight.owns(stale)
    assert flight.claim(None)[0] is Claim.JOIN
    flight.release(fresh)
    assert not flight.in_flight


# -- injected clients are never bypassed --------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) any attempt to build an AsyncClient or open a socket."""
    import socket

    import httpx

    attempts: list[str] = []
    real_init = httpx.AsyncClient.__init__

    def spy_init(self: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append("AsyncClient")
        real_init(self, *args, **kwargs)

    def refuse_connect(self: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append("connect")
        raise OSError("no network in this test")

    monkeypatch.setattr(httpx.AsyncClient, "__init__", spy_init)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    return attempts


def test_averify_uses_the_injected_sync_client(idp: MockIdP, no_network: list[str]) -> None:
    import httpx

    from federation import Bridge

    client = httpx.Client(transport=idp.transport())
    bridge = Bridge.from_dict(
        idp.bridge_config(), http_client=client, clock=idp.clock, on_event=lambda e: None
    )
    assert asyncio.run(bridge.averify(idp.mint())).issuer == idp.issuer
    assert jwks_requests(idp) == 1  # the mock saw the fetch: it went through the injected client
    assert no_network == []
    bridge.close()
    client.close()


def test_awarm_up_and_forced_refetch_use_the_injected_sync_client(
    idp: MockIdP, no_network: list[str]
) -> None:
    import httpx

    from federation import Bridge

    client = httpx.Client(transport=idp.transport())
    bridge = Bridge.from_dict(
        idp.bridge_config(discovery=True), http_client=client, clock=idp.clock, on_event=lambda e: None
    )

    async def main() -> None:
        assert (await bridge.awarm_up()).ok
        idp.rotate_keys()
        await bridge.averify(idp.mint())  # forced refetch, async, through the sync client

    asyncio.run(main())
    assert len(idp.requests_to("discovery")) == 1
    assert jwks_requests(idp) == 2
    assert no_network == []
    bridge.close()
    client.close()


def test_alogin_uses_the_injected_sync_client(idp: MockIdP, no_network: list[str]) -> None:
    import httpx

    from federation import Bridge
    from federation.storage import MemoryStore

    client = httpx.Client(transport=idp.transport())
    bridge = Bridge.from_dict(
        idp.bridge_config(), http_client=client, clock=idp.clock, on_event=lambda e: None, store=MemoryStore()
    )
    result = asyncio.run(bridge.alogin(idp.mint(email="ada@example.test")))
    assert result.created
    assert jwks_requests(idp) == 1
    assert no_network == []
    bridge.close()
    client.close()


def test_an_injected_async_client_is_used_for_async_fetches(idp: MockIdP) -> None:
    import httpx

    from federation import Bridge

    sync_calls: list[str] = []

    def sync_handler(request: httpx.Request) -> httpx.Response:
        sync_calls.append(str(request.url))
        return idp.handler(request)

    bridge = Bridge.from_dict(
        idp.bridge_config(),
        http_client=httpx.Client(transport=httpx.MockTransport(sync_handler)),
        async_http_client=httpx.AsyncClient(transport=idp.transport()),
        clock=idp.clock,
        on_event=lambda e: None,
    )
    asyncio.run(bridge.averify(idp.mint()))
    assert jwks_requests(idp) == 1 and sync_calls == []
    bridge.close()
