"""Real key sets and discovery documents (``../shared/fixtures/wellknown/``):
every recorded version of Google, Entra ID, Apple, Yahoo, GitLab, Slack and
Twitch loads, every discovery document parses, and a real rotation timeline
(Google's) is followed by a bridge step by step.

The files are read in place; without ``../shared`` these tests skip (or fail
with ``FEDERATION_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from federation import Bridge
from federation._keys._documents import FetchFailed, parse_discovery
from federation._keys._http import FetchResponse
from federation._rfc7517 import import_jwks
from federation.config import KeysConfig
from federation.errors import BadSignature, InvalidToken, UnknownKey
from federation.testing import FrozenClock, SigningKey, generate_signing_key
from federation.testing._keys import sign

# Collection needs the file list before fixtures exist: same location rule as tests/conftest.py.
_SHARED = Path(os.environ.get("FEDERATION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
_WELLKNOWN = _SHARED / "fixtures" / "wellknown"
VERSIONS = sorted(p.relative_to(_WELLKNOWN).as_posix() for p in _WELLKNOWN.glob("*/*.json"))
# Without the shared material, one placeholder parameter lets the shared_dir fixture skip or fail.
FILES = VERSIONS or ["<shared material missing>"]
GOOGLE = [v for v in VERSIONS if v.startswith("google/")] or ["<shared material missing>"]

ENTRA_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
ENTRA_TENANT = re.compile(r"https://login\.microsoftonline\.com/[0-9a-f-]{36}/v2\.0")
MIN_RSA_BITS = 2048


def load(shared_dir: Path, name: str) -> dict[str, Any]:
    path = shared_dir / "fixtures" / "wellknown" / name
    assert path.is_file(), f"{path} is missing"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert {"metadata", "jwks"} <= document.keys()
    return document


def rsa_bits(entry: dict[str, Any]) -> int:
    n = base64.urlsafe_b64decode(entry["n"] + "=" * (-len(entry["n"]) % 4))
    return int.from_bytes(n, "big").bit_length()


def discovery_response(metadata: dict[str, Any]) -> FetchResponse:
    return FetchResponse(200, {"content-type": "application/json"}, json.dumps(metadata).encode())


# -- every version loads ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_key_set_loads(shared_dir: Path, name: str) -> None:
    entries = load(shared_dir, name)["jwks"]["keys"]
    keyset, warnings = import_jwks({"keys": entries}, max_keys=KeysConfig().max_keys)
    assert len(keyset) >= 1, warnings
    # The only entries allowed to be skipped are RSA keys below 2048 bits (Yahoo still
    # publishes 1024-bit RSA keys beside its ES256 key); any other warning is a surprise.
    weak = {i for i, e in enumerate(entries) if e.get("kty") == "RSA" and rsa_bits(e) < MIN_RSA_BITS}
    skipped = {int(m.group(1)) for w in warnings if (m := re.match(r"key #(\d+) skipped", w))}
    assert skipped == weak, warnings
    assert len(warnings) == len(weak), warnings
    usable = [e for i, e in enumerate(entries) if i not in weak]
    assert keyset.kids == {e["kid"] for e in usable}
    assert len(keyset) == len(usable)
    for entry in usable:
        key = keyset.find(entry["kid"], entry.get("alg", "RS256"))
        assert key is not None
        if "alg" in entry:
            assert entry["alg"] in key.algorithms


@pytest.mark.parametrize("name", [v for v in VERSIONS if v.startswith("entra-")] or FILES[:1])
def test_entra_keys_carry_their_issuer(shared_dir: Path, name: str) -> None:
    entries = load(shared_dir, name)["jwks"]["keys"]
    keyset, warnings = import_jwks({"keys": entries}, max_keys=100)
    assert warnings == []
    by_kid = {k.kid: k for k in keyset.keys}
    for entry in entries:
        assert "alg" not in entry and entry["x5c"], "Entra keys: x5c, and no alg"
        key = by_kid[entry["kid"]]
        assert key.issuer == entry["issuer"]
        assert key.alg is None
        assert "RS256" in key.algorithms
        # The multi-tenant template, or (for a few keys) one concrete tenant's issuer.
        assert key.issuer == ENTRA_TEMPLATE or ENTRA_TENANT.fullmatch(key.issuer), key.issuer
    assert any(k.issuer == ENTRA_TEMPLATE for k in keyset.keys)


# -- every discovery document parses ----------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_discovery_document_parses(shared_dir: Path, name: str) -> None:
    metadata = load(shared_dir, name)["metadata"]
    config = KeysConfig()
    jwks_uri = parse_discovery(discovery_response(metadata), metadata["issuer"], config)
    assert jwks_uri == metadata["jwks_uri"]
    assert jwks_uri.startswith("https://")


@pytest.mark.parametrize("name", FILES)
def test_discovery_document_is_refused_for_a_look_alike_issuer(shared_dir: Path, name: str) -> None:
    metadata = load(shared_dir, name)["metadata"]
    for configured in (metadata["issuer"] + "/", metadata["issuer"].upper()):
        with pytest.raises(FetchFailed) as info:
            parse_discovery(discovery_response(metadata), configured, KeysConfig())
        assert info.value.reason == "discovery_issuer_mismatch"


# -- a real rotation timeline -----------------------------------------------------------------------

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS = "https://www.googleapis.com/oauth2/v3/certs"


@pytest.fixture(scope="module")
def forger() -> SigningKey:
    """Signs tokens for Google's kids with a key Google never published."""
    return generate_signing_key("RS256", kid="forger")


def forged(forger: SigningKey, kid: str, now: float) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    claims = {"iss": GOOGLE_ISSUER, "sub": "1", "aud": "c", "iat": int(now), "exp": int(now) + 300}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(forger.private_key, 'RS256', signing_input.encode()))}"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Served:
    """What the mock Google endpoint serves now, and the requests it answered."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) != GOOGLE_JWKS:
            return httpx.Response(404)
        return httpx.Response(200, json=self.document, headers={"content-type": "application/json"})


@pytest.fixture
def google_bridge(clock: FrozenClock) -> Iterator[tuple[Bridge, Served]]:
    served = Served()
    transport = httpx.MockTransport(served)
    bridge = Bridge.from_dict(
        {
            "issuers": [
                {"provider": "oidc", "issuer": GOOGLE_ISSUER, "audiences": ["c"], "jwks_uri": GOOGLE_JWKS}
            ]
        },
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
    )
    yield bridge, served
    bridge.close()


def test_google_rotation_timeline(
    shared_dir: Path,
    google_bridge: tuple[Bridge, Served],
    clock: FrozenClock,
    forger: SigningKey,
    mode: str,
) -> None:
    bridge, served = google_bridge
    ttl = bridge.config.keys.ttl  # Google's recorded responses carry no Cache-Control here
    verify: Callable[[str], object] = (
        bridge.verify if mode == "sync" else (lambda token: asyncio.run(bridge.averify(token)))
    )

    def outcome(kid: str) -> type[InvalidToken]:
        with pytest.raises(InvalidToken) as info:
            verify(forged(forger, kid, clock()))
        return type(info.value)

    assert len(GOOGLE) >= 2, "a timeline needs at least two versions"
    previous: set[str] = set()
    expected = 0
    for name in GOOGLE:
        kids = {e["kid"] for e in load(shared_dir, name)["jwks"]["keys"]}
        served.document = load(shared_dir, name)["jwks"]
        clock.advance(ttl + 1)
        for kid in sorted(kids):
            # The key is found (so the forged signature is what fails), never unknown.
            assert outcome(kid) is BadSignature, (name, kid)
        state = bridge._sources[GOOGLE_ISSUER].state
        assert state.keyset is not None
        assert state.keyset.kids == kids, name
        for kid in sorted(previous - kids):
            assert outcome(kid) is UnknownKey, (name, kid)  # dropped keys stop at once
        # One fetch per version, plus the one forced refetch owed to the first failed
        # signature under a known kid after it (the key may have been replaced under its
        # kid); the dropped kids asked for next fall inside that refetch's cooldown.
        expected += 2
        assert len(served.requests) == expected
        previous = kids
