"""DOS-*: resource limits and implementation hygiene (catalogue: docs/security.md).

DOS-01 (exception hygiene) is the property-based suite in
test_sec_properties.py plus the whole-bridge fuzz below. Resource bounds
(ENC-14/15, JSON-08/12, HDR-08, KEY-13, FETCH-06) are in test_sec_bounds.py.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import (
    BridgeFactory,
    Net,
    b64u,
    base_claims,
    expect_reject,
    hdr,
    jdump,
    raw_token,
    signed,
)

import federation
from federation import Bridge
from federation._rfc7517 import import_jwk
from federation._rfc7518 import SPECS
from federation.errors import (
    BadSignature,
    ConfigError,
    DisallowedAlgorithm,
    FederationError,
    InvalidToken,
    TokenExpired,
)
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]
MARKER = "M4RK3R"


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


@pytest.fixture(scope="module")
def flip_bridge() -> Iterator[tuple[Bridge, str, MockIdP]]:
    """One warm bridge and one valid token for the fuzz (module scope: hypothesis reuses it)."""
    from security_support import NOW

    from federation.testing import FrozenClock

    clock = FrozenClock(NOW)
    idp = MockIdP(issuer="https://idp.test", audience="my-client", clock=clock)
    rs = idp.key_for("RS256")
    factory = BridgeFactory(clock)
    bridge = factory({"issuers": [idp.issuer_config()]}, Net(idp))
    token = signed(hdr(rs), base_claims(idp), rs)
    assert bridge.verify(token).subject == "u-1"
    yield bridge, token, idp
    factory.close()


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_dos_01_mutated_tokens_raise_only_library_errors(
    flip_bridge: tuple[Bridge, str, MockIdP], data: st.DataObject
) -> None:
    bridge, token, _idp = flip_bridge
    chars = list(token)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(chars) - 1))
        chars[i] = data.draw(st.sampled_from('AZaz09-_.=+/ {}"\\\x00é'))
    mutated = "".join(chars)
    try:
        bridge.verify(mutated)
    except FederationError:
        pass


@settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(max_size=64), payload=st.binary(max_size=128))
def test_dos_01_raw_header_and_payload_bytes(
    flip_bridge: tuple[Bridge, str, MockIdP], header: bytes, payload: bytes
) -> None:
    bridge, _token, idp = flip_bridge
    try:
        bridge.verify(signed(header, payload, idp.key_for("RS256")))
    except FederationError:
        pass
    else:  # pragma: no cover - arbitrary bytes are never a valid claims set for this issuer
        raise AssertionError("accepted arbitrary bytes")


def test_dos_02_expired_and_forged_reports_bad_signature(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, attacker: dict[str, SigningKey]
) -> None:
    kx = attacker["RS256"]
    claims = base_claims(idp, exp=1, iat=0, nbf=None, sub=MARKER)
    bridge = fresh()
    err = expect_reject(lambda: bridge.verify(signed(hdr(rs), claims, kx)), BadSignature, "bad_signature")
    assert not isinstance(err, TokenExpired)
    assert MARKER not in str(err) and MARKER not in repr(vars(err))
    assert not any(isinstance(v, dict) for v in vars(err).values())  # no claims ride along
    # the genuine expired token, by contrast, is "expired"
    expect_reject(lambda: bridge.verify(signed(hdr(rs), claims, rs)), TokenExpired, "expired")


def test_dos_03_no_side_effects_before_the_signature(
    fresh: Fresh,
    net: Net,
    idp: MockIdP,
    rs: SigningKey,
    attacker: dict[str, SigningKey],
    bridges: BridgeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    kx = attacker["RS256"]
    claims = base_claims(idp, sub=MARKER, email=f"{MARKER}@x.test", jti=MARKER, name=MARKER)
    bridge = fresh()
    for token in (
        signed(hdr(rs, jku=f"https://{MARKER}.test/jwks"), claims, kx),
        raw_token({"alg": "none", "jku": f"https://{MARKER}.test/"}, claims),
        signed(hdr(kx, x5u=f"https://{MARKER}.test/"), claims, kx),
    ):
        expect_reject(lambda t=token: bridge.verify(t), InvalidToken)
    assert MARKER not in caplog.text
    assert all(MARKER not in repr(e) for e in bridges.events)
    assert set(net.urls) <= {idp.jwks_uri}


@pytest.mark.parametrize(
    "value",
    ["evil\r\nX-Injected: 1", "evil\x1b[2J\x1b[31m", "evil\u2028x", "evil" + "A" * 3000],
    ids=["crlf", "ansi", "u2028", "long"],
)
@pytest.mark.parametrize("where", ["kid", "alg", "iss", "typ", "sub"])
def test_dos_04_log_injection_and_data_echo(
    fresh: Fresh,
    idp: MockIdP,
    rs: SigningKey,
    bridges: BridgeFactory,
    caplog: pytest.LogCaptureFixture,
    value: str,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    header = hdr(rs, **({where: value} if where in ("kid", "alg", "typ") else {}))
    claims = base_claims(idp, **({where: value} if where in ("iss", "sub") else {}))
    err = expect_reject(lambda: fresh().verify(signed(header, claims, rs, alg="RS256")), InvalidToken)
    message = str(err)
    assert "evil" not in message
    assert re.fullmatch(r"[\x20-\x7e]*", message), "control characters in an error message"
    assert len(message) <= 200
    assert "evil" not in caplog.text
    assert all("evil" not in repr(e) for e in bridges.events)


def test_dos_05_no_mac_comparison_exists(idp: MockIdP) -> None:
    """Not applicable as a timing test: HMAC is never enabled, so no MAC is ever compared."""
    assert not any(name.startswith("HS") for name in SPECS)
    key = import_jwk(idp.key_for("RS256").public_jwk)
    with pytest.raises(DisallowedAlgorithm):
        key.verifier("HS256")


def test_dos_06_no_decode_without_verify(idp: MockIdP) -> None:
    assert list(inspect.signature(Bridge.verify).parameters) == ["self", "token"]
    assert list(inspect.signature(Bridge.averify).parameters) == ["self", "token"]
    public = {name.lower() for name in federation.__all__} | {
        n.lower() for n in dir(Bridge) if not n.startswith("_")
    }
    assert not {n for n in public if "decode" in n or "unverified" in n or "insecure" in n}
    for option in (
        {"verify_signature": False},
        {"verify_exp": False},
        {"options": {"verify": False}},
        {"skip_claims": True},
    ):
        with pytest.raises(ConfigError):
            Bridge.from_dict({"issuers": [idp.issuer_config(**option)]})
        with pytest.raises(ConfigError):
            Bridge.from_dict({"issuers": [idp.issuer_config()], **option})


def test_dos_07_explicit_algorithms_and_key_objects(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    for algorithms in ([], None, "RS256", ["RS256", None]):
        with pytest.raises(ConfigError):
            Bridge.from_dict({"issuers": [idp.issuer_config(algorithms=algorithms)]})
    key = import_jwk(rs.public_jwk)
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert isinstance(key.public_key, rsa.RSAPublicKey)  # a key object, never a PEM string
    bridge = fresh(algorithms=["ES256"])
    expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp), rs)), DisallowedAlgorithm)


def test_dos_07_verification_is_never_delegated_to_a_jose_library() -> None:
    """Signatures are checked with cryptography directly (federation/_rfc7518.py); joserfc is
    used only to build public keys from JWK members. No PyJWT / python-jose / authlib decode.

    Authlib's OAuth *client* (the web login service's code flow) is allowed; its JOSE and OIDC
    modules are not, nor the client calls that would decode an id token with them
    (``authorize_access_token`` / ``parse_id_token``): the service verifies the id token it
    receives through the bridge like any other token."""
    root = Path(federation.__file__).resolve().parent
    sources = [p for p in root.rglob("*.py") if "testing" not in p.parts]
    sources += list((root.parent / "providers").glob("*.py")) if (root.parent / "providers").is_dir() else []
    pattern = re.compile(
        r"^\s*(from|import)\s+(jwt|jose|jwcrypto|joserfc\.(jws|jwt|jwe)"
        r"|authlib(?!\.integrations\.\w+_client\b|\.deprecate\b))\b",
        re.M,
    )
    decoding_calls = re.compile(r"\.(authorize_access_token|parse_id_token)\(")
    offenders = [
        str(p)
        for p in sources
        if pattern.search(text := p.read_text(encoding="utf-8")) or decoding_calls.search(text)
    ]
    assert offenders == []
    assert pattern.search("from authlib.jose import jwt") and pattern.search("import authlib")
    assert not pattern.search("from authlib.integrations.starlette_client import OAuth")


def test_dos_02_unsigned_expired_token_is_an_algorithm_error(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    token = raw_token({"alg": "none"}, base_claims(idp, exp=1, iat=0, nbf=None))
    expect_reject(lambda: fresh().verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    assert net.requests == []
    assert b64u(jdump({})) == "e30"
