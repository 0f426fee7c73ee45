"""Key sources (issue 11 item 6): the KeySource interface, injected sources, StaticKeySet,
``jwks_file:`` in YAML, and one focused test per layer of the shipped cache."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from federation import Bridge
from federation._keys import KeySource, StaticKeySet
from federation._rfc7517 import VerificationKey
from federation.errors import BadSignature, ConfigError, KeySetUnavailable, UnknownKey
from federation.events import Event, EventSink
from federation.testing import FrozenClock, MockIdP, generate_signing_key

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


class CountingSource:
    """A KeySource of the application's own: answers from a StaticKeySet, counts calls."""

    def __init__(self, inner: StaticKeySet) -> None:
        self.inner = inner
        self.on_event: EventSink | None = None
        self.calls: list[str] = []

    def get_key(self, kid: str | None, alg: str) -> VerificationKey:
        self.calls.append("get_key")
        return self.inner.get_key(kid, alg)

    async def aget_key(self, kid: str | None, alg: str) -> VerificationKey:
        self.calls.append("aget_key")
        return self.inner.get_key(kid, alg)

    def refresh(self) -> bool:
        self.calls.append("refresh")
        return True

    async def arefresh(self) -> bool:
        self.calls.append("arefresh")
        return True


def _no_http() -> respx.MockRouter:
    router = respx.mock(assert_all_called=False)
    router.route(name="any").mock(return_value=httpx.Response(500))
    return router


# -- injected sources -----------------------------------------------------------------------


def test_an_injected_source_is_used_sync_and_async_and_nothing_is_fetched() -> None:
    idp = MockIdP()
    source = CountingSource(StaticKeySet.from_jwks(idp.jwks()))
    assert isinstance(source, KeySource)
    with _no_http() as router:
        bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})
        assert bridge.verify(idp.mint(sub="u1")).subject == "u1"
        assert asyncio.run(bridge.averify(idp.mint(sub="u2"))).subject == "u2"
        assert bridge.warm_up().ok
        assert asyncio.run(bridge.awarm_up()).succeeded == (idp.issuer,)
        bridge.close()
        assert router["any"].call_count == 0
    assert source.calls == ["get_key", "aget_key", "refresh", "arefresh"]
    assert source.on_event is not None  # the bridge handed over its events hook


def test_the_bridge_passes_its_event_sink_to_an_injected_source() -> None:
    idp = MockIdP()
    seen: list[Event] = []
    source = CountingSource(StaticKeySet.from_jwks(idp.jwks()))
    Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source}, on_event=seen.append)
    assert source.on_event is not None
    source.on_event(Event("fetched", idp.issuer, {}))
    assert [e.name for e in seen] == ["fetched"]


def test_a_failed_injected_refresh_is_reported_by_warm_up() -> None:
    idp = MockIdP()

    class Down(CountingSource):
        last_error = "offline"

        def refresh(self) -> bool:
            return False

    source = Down(StaticKeySet.from_jwks(idp.jwks()))
    bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})
    assert dict(bridge.warm_up().failed) == {idp.issuer: "offline"}


def test_a_key_source_for_an_unconfigured_issuer_is_a_config_error() -> None:
    idp = MockIdP()
    source = StaticKeySet.from_jwks(idp.jwks())
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(idp.bridge_config(), key_sources={"https://other.test": source})
    assert caught.value.code == "config_error"
    assert caught.value.field == "key_sources"
    assert "https://other.test" in str(caught.value)


def test_other_issuers_still_fetch() -> None:
    injected, fetched = MockIdP(issuer="https://a.test"), MockIdP(issuer="https://b.test")
    config = {"issuers": [injected.issuer_config(), fetched.issuer_config()]}
    with fetched:  # respx-installed mock issuer for b only
        bridge = Bridge.from_dict(
            config, key_sources={injected.issuer: StaticKeySet.from_jwks(injected.jwks())}
        )
        assert bridge.verify(injected.mint(sub="a")).subject == "a"
        assert bridge.verify(fetched.mint(sub="b")).subject == "b"
    assert len(injected.requests) == 0
    assert len(fetched.requests_to("jwks")) == 1


# -- StaticKeySet -----------------------------------------------------------------------------


def _static_bridge(idp: MockIdP, source: StaticKeySet) -> Bridge:
    return Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})


def test_static_from_a_jwks_dict_verifies_and_refuses_an_unknown_kid() -> None:
    idp = MockIdP(algorithms=["ES256"])
    bridge = _static_bridge(idp, StaticKeySet.from_jwks(idp.jwks(), issuer=idp.issuer))
    assert bridge.verify(idp.mint(sub="u")).subject == "u"
    assert bridge.verify(idp.mint(sub="e", alg="ES256")).subject == "e"
    with pytest.raises(UnknownKey) as caught:
        bridge.verify(idp.mint(sub="u", kid="not-there"))
    assert caught.value.issuer == idp.issuer
    with pytest.raises(UnknownKey):
        asyncio.run(bridge.averify(idp.mint(sub="u", kid="not-there")))


def test_static_from_a_jwks_file(tmp_path: Path) -> None:
    idp = MockIdP()
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(idp.jwks()))
    bridge = _static_bridge(idp, StaticKeySet.from_file(path))
    assert bridge.verify(idp.mint(sub="u")).subject == "u"
    idp.rotate_keys(keep_old=False)  # a new key the static set never saw
    with pytest.raises(UnknownKey):
        bridge.verify(idp.mint(sub="u"))


def test_static_from_pem_map_and_pem_file(tmp_path: Path) -> None:
    idp = MockIdP(key_format="x509_pem_map")
    certificates = idp.certificates()
    ((kid, pem),) = certificates.items()
    assert (
        _static_bridge(idp, StaticKeySet.from_pem_map(certificates)).verify(idp.mint(sub="m")).subject == "m"
    )
    path = tmp_path / "cert.pem"
    path.write_text(pem)
    bridge = _static_bridge(idp, StaticKeySet.from_pem_file(path, kid=kid))
    assert bridge.verify(idp.mint(sub="f")).subject == "f"
    with pytest.raises(UnknownKey):
        bridge.verify(idp.mint(sub="f", kid="other"))


def test_static_applies_key_hygiene() -> None:
    # A private key member is refused by the importer; a set with nothing usable is an error.
    idp = MockIdP()
    jwk = dict(idp.jwks()["keys"][0], d="AQAB")
    with pytest.raises(ConfigError, match="no usable key"):
        StaticKeySet.from_jwks({"keys": [jwk]})
    with pytest.raises(ConfigError, match="not a JWK Set"):
        StaticKeySet.from_jwks({"kty": "RSA"})


def test_static_keeps_its_key_when_the_issuer_replaces_it_under_the_same_kid() -> None:
    idp = MockIdP()
    bridge = _static_bridge(idp, StaticKeySet.from_jwks(idp.jwks()))
    old_token = idp.mint(sub="before")
    idp.replace_key()
    with _no_http() as router:
        for verify in (bridge.verify, lambda t: asyncio.run(bridge.averify(t))):
            with pytest.raises(BadSignature):
                verify(idp.mint(sub="after"))  # the file is the key set: nothing to renew
            assert verify(old_token).subject == "before"
    assert router.calls.call_count == 0


class RenewingSource(CountingSource):
    """A source that renews keys: hands out ``renewed`` (or None) for a failed signature."""

    def __init__(self, inner: StaticKeySet, renewed: StaticKeySet | None) -> None:
        super().__init__(inner)
        self.renewed = renewed
        self.asked: list[tuple[str | None, str, VerificationKey]] = []

    def renew_key(self, kid: str | None, alg: str, rejected: VerificationKey) -> VerificationKey | None:
        self.asked.append((kid, alg, rejected))
        return self.renewed.get_key(kid, alg) if self.renewed is not None else None

    async def arenew_key(
        self, kid: str | None, alg: str, rejected: VerificationKey
    ) -> VerificationKey | None:
        return self.renew_key(kid, alg, rejected)


def test_an_injected_source_that_renews_keys_is_asked_once_per_failed_signature() -> None:
    idp = MockIdP()
    before = StaticKeySet.from_jwks(idp.jwks())
    old_token = idp.mint(sub="before")
    kid = idp.key_for().kid
    idp.replace_key()
    source = RenewingSource(before, StaticKeySet.from_jwks(idp.jwks()))
    bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})
    assert bridge.verify(idp.mint(sub="after")).subject == "after"
    assert asyncio.run(bridge.averify(idp.mint(sub="again"))).subject == "again"
    assert [(k, a) for k, a, _ in source.asked] == [(kid, "RS256"), (kid, "RS256")]
    assert source.asked[0][2] is before.get_key(kid, "RS256")  # the key that failed
    assert bridge.verify(old_token).subject == "before"  # its own key still answers get_key
    with pytest.raises(BadSignature) as caught:
        bridge.verify(idp.mint(key=generate_signing_key("RS256", kid=kid)))  # the renewed key fails too
    assert caught.value.issuer == idp.issuer and len(source.asked) == 3

    source.renewed = None
    with pytest.raises(BadSignature):
        asyncio.run(bridge.averify(idp.mint(sub="after")))
    assert len(source.asked) == 4


class FaultySource(CountingSource):
    """A source whose renewal fails, or hands back something that is not this token's key."""

    def __init__(self, inner: StaticKeySet, answer: object) -> None:
        super().__init__(inner)
        self.answer = answer

    def renew_key(self, kid: str | None, alg: str, rejected: VerificationKey) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def arenew_key(self, kid: str | None, alg: str, rejected: VerificationKey) -> Any:
        return self.renew_key(kid, alg, rejected)  # not even a coroutine function


def test_a_faulty_renewal_leaves_the_signatures_verdict_standing() -> None:
    idp = MockIdP()
    other = MockIdP(issuer="https://other.example")
    before = StaticKeySet.from_jwks(idp.jwks())
    kid = idp.key_for().kid
    idp.replace_key()
    token = idp.mint(sub="after")
    foreign = StaticKeySet.from_jwks(other.jwks()).get_key(other.key_for().kid, "RS256")
    for answer in (RuntimeError("boom"), "junk", 42, foreign):
        source = FaultySource(before, answer)
        bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})
        with pytest.raises(BadSignature):
            bridge.verify(token)
        with pytest.raises(BadSignature):
            asyncio.run(bridge.averify(token))
    assert foreign.kid != kid
    # A key of another kid, even one that signs: never used for this token's kid.
    forged = other.mint(iss=idp.issuer, aud=idp.audience, kid=kid)
    bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: FaultySource(before, foreign)})
    with pytest.raises(BadSignature):
        bridge.verify(forged)
    source = FaultySource(before, KeySetUnavailable("down", issuer=idp.issuer))
    bridge = Bridge.from_dict(idp.bridge_config(), key_sources={idp.issuer: source})
    with pytest.raises(KeySetUnavailable):  # a typed error of the source's own passes through
        bridge.verify(token)


# -- jwks_file: in YAML -----------------------------------------------------------------------


def _write_config(tmp_path: Path, idp: MockIdP, jwks_file: str) -> Path:
    entry: dict[str, Any] = idp.issuer_config()
    del entry["jwks_uri"]
    entry["jwks_file"] = jwks_file
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump({"issuers": [entry]}))
    return path


def test_jwks_file_in_yaml_is_resolved_beside_the_config_and_never_fetches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp = MockIdP()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "idp.json").write_text(json.dumps(idp.jwks()))
    config = _write_config(tmp_path, idp, "keys/idp.json")
    monkeypatch.chdir(tmp_path / "keys")  # relative to the config file, not the working directory
    with _no_http() as router:
        with Bridge.from_file(config) as bridge:
            assert bridge.warm_up().ok
            assert bridge.verify(idp.mint(sub="y")).subject == "y"
            assert asyncio.run(bridge.averify(idp.mint(sub="z"))).subject == "z"
            with pytest.raises(UnknownKey):
                bridge.verify(idp.mint(sub="y", kid="nope"))
        assert router["any"].call_count == 0


def test_a_missing_jwks_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    idp = MockIdP()
    config = _write_config(tmp_path, idp, "absent.json")
    with pytest.raises(ConfigError) as caught:
        Bridge.from_file(config)
    assert "absent.json" in str(caught.value)
    assert caught.value.field == "issuers[0].jwks_file"
    assert caught.value.file is not None and caught.value.file.endswith("absent.json")


@pytest.mark.parametrize("content", ["not json", '{"keys": "x"}', '{"keys": []}'])
def test_a_bad_jwks_file_is_a_config_error_naming_the_file(tmp_path: Path, content: str) -> None:
    idp = MockIdP()
    (tmp_path / "bad.json").write_text(content)
    config = _write_config(tmp_path, idp, "bad.json")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        Bridge.from_file(config)


# -- the cache layers, one rule each -----------------------------------------------------------


def _keyset() -> Any:
    from federation._rfc7517 import KeySet

    return KeySet(StaticKeySet.from_jwks(MockIdP().jwks()).keyset.keys)


def test_ttl_layer_is_fresh_until_its_ttl_and_replaces_the_set_whole() -> None:
    from federation._keys._layers import TtlCache

    cache = TtlCache()
    assert cache.keyset is None and cache.fresh_until == float("-inf")  # never fresh
    first, second = _keyset(), _keyset()
    cache.store(first, 300, now=1000)
    assert cache.keyset is first and cache.fresh_until == 1300
    cache.store(second, 60, now=1100)  # the end of freshness follows the latest store, even earlier
    assert cache.keyset is second and cache.fresh_until == 1160


def test_a_sources_keyset_cache_follows_the_refetch_that_replaces_the_set(
    idp: MockIdP, clock: FrozenClock
) -> None:
    # The repeat of a cached external token trusts its key set only while this object holds
    # that very set, still fresh: held by the sessions layer, it must see each refetch's
    # replacement and the end of each set's freshness.
    with idp.bridge(config={"issuers": [idp.issuer_config()]}, clock=clock) as bridge:
        source = next(iter(bridge._profile_sources.values()))
        keys = source.keyset_cache
        assert keys.keyset is None  # nothing fetched yet
        assert bridge.verify(idp.mint(sub="u-1")).subject == "u-1"
        before = keys.keyset
        assert before is not None and clock() < keys.fresh_until
        idp.rotate_keys(keep_old=False)
        assert bridge.verify(idp.mint(sub="u-2")).subject == "u-2"  # an unknown kid: a forced refetch
        assert source.keyset_cache is keys  # the same holder, a new set in it
        assert keys.keyset is not None and keys.keyset is not before
        clock.advance(10_000)  # past any TTL: no longer fresh until a fetch
        assert clock() >= keys.fresh_until


def test_a_static_key_set_is_its_own_cache_and_never_goes_stale() -> None:
    source = StaticKeySet.from_jwks(MockIdP().jwks())
    assert source.keyset_cache is source
    assert source.keyset_cache.keyset is source.keyset and source.fresh_until == math.inf


def test_cooldown_layer_allows_one_forced_refetch_per_cooldown_after_the_first() -> None:
    from federation._keys._layers import Cooldown

    cooldown = Cooldown(30)
    assert cooldown.allowed(0)  # nothing forced yet
    cooldown.begin(100, forced=False)
    assert cooldown.allowed(100)  # the first unknown kid after a fetch refetches at once
    cooldown.begin(100, forced=True)
    assert not cooldown.allowed(129.9)
    assert cooldown.allowed(130)
    cooldown.begin(110, forced=False)  # a scheduled fetch: the next forced one is free again
    assert cooldown.allowed(111)


def test_negative_cache_layer_remembers_unknown_kids_for_its_ttl_and_is_bounded() -> None:
    from federation._keys._layers import NegativeCache

    now = [0.0]
    unknown = NegativeCache(60, lambda: now[0], maxsize=2)
    unknown.add("a")
    assert "a" in unknown and "b" not in unknown
    now[0] = 59.9
    assert "a" in unknown
    now[0] = 60.0
    assert "a" not in unknown
    for kid in ("x", "y", "z"):
        unknown.add(kid)
    assert "x" not in unknown and "z" in unknown  # bounded: the oldest went
    unknown.clear()
    assert "z" not in unknown


def test_stale_if_error_layer_backs_off_and_serves_stale_for_max_stale() -> None:
    from federation._keys._layers import StaleIfError

    stale = StaleIfError(cooldown=30, max_stale=3600)
    assert not stale.may_serve(0) and not stale.backing_off(0)
    stale.succeeded(fresh_until=1000)
    assert stale.may_serve(4599) and not stale.may_serve(4600)
    stale.failed("http_500", now=2000, url="https://idp.test/jwks")
    assert stale.backing_off(2029) and not stale.backing_off(2030)
    assert (stale.last_error, stale.last_error_url) == ("http_500", "https://idp.test/jwks")
    stale.succeeded(fresh_until=5000)
    assert stale.last_error is None and stale.last_error_url is None


def test_state_composes_the_layers_from_plain_timings() -> None:
    from federation._keys._state import CacheTimings, KeyCacheState, Miss

    now = [1000.0]
    state = KeyCacheState("https://idp.test", CacheTimings(30, 3600, 60), lambda: now[0])
    assert state.lookup("k", "RS256", now[0]) is Miss.REFRESH
    keyset = _keyset()
    (kid,) = keyset.kids
    state.begin_attempt(now[0])
    state.record_success(keyset, 300, now[0])
    assert isinstance(state.lookup(kid, "RS256", now[0]), VerificationKey)
    assert state.lookup("other", "RS256", now[0]) is Miss.FORCED
    state.begin_attempt(now[0], forced=True)
    state.record_success(keyset, 300, now[0])
    with pytest.raises(UnknownKey):
        state.lookup_after_fetch("other", "RS256", now[0])  # proven unknown: remembered
    with pytest.raises(UnknownKey):
        state.lookup("other", "RS256", now[0] + 1)
    assert state.lookup("third", "RS256", now[0] + 1) is Miss.RATE_LIMITED
    # Past the TTL a failure serves the stale set, within max_stale.
    state.record_failure("timeout", now[0] + 400)
    assert isinstance(state.lookup(kid, "RS256", now[0] + 401), VerificationKey)
    assert state.lookup(kid, "RS256", now[0] + 430) is Miss.REFRESH  # the back-off is over: retry
    # Past max_stale a failure leaves nothing to serve.
    gone = now[0] + 300 + 3600 + 1
    state.record_failure("timeout", gone)
    with pytest.raises(KeySetUnavailable, match="timeout"):
        state.lookup(kid, "RS256", gone + 1)
