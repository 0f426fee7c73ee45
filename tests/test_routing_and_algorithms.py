"""Routing by exact ``iss``, the per-issuer algorithm allow-list, key selection
and signature checks: the functional specification of ``Verifier.prepare`` and
of the key lookup, through both ``Bridge.verify`` and ``Bridge.averify``.

Every rejection test runs twice (``verify`` fixture: sync and async) and
asserts the error class, its stable ``code``, and where it matters the number
of HTTP requests the mock issuer served.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation import Bridge, VerifiedToken
from federation.errors import (
    BadSignature,
    DisallowedAlgorithm,
    InvalidToken,
    UnknownKey,
    UntrustedIssuer,
)
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key, mock_transport

Verify = Callable[[Bridge, str], VerifiedToken]


@pytest.fixture(params=["sync", "async"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """``verify(bridge, token)`` through ``Bridge.verify`` or ``Bridge.averify``."""
    if request.param == "sync":
        return lambda bridge, token: bridge.verify(token)
    return lambda bridge, token: asyncio.run(bridge.averify(token))


@pytest.fixture(scope="module")
def foreign_rsa() -> SigningKey:
    """An RSA key pair that no issuer publishes (the attacker's)."""
    return generate_signing_key("RS256", kid="foreign-rsa")


@pytest.fixture(scope="module")
def _shared_idp() -> Iterator[tuple[MockIdP, Bridge]]:
    idp = MockIdP(issuer="https://idp.test", audience="my-client", clock=FrozenClock())
    bridge = idp.bridge()
    yield idp, bridge
    bridge.close()


@pytest.fixture
def quiet(_shared_idp: tuple[MockIdP, Bridge]) -> tuple[MockIdP, Bridge]:
    """A mock issuer and its bridge shared by the tests that must make no request at
    all (many parameters, one key generation); its request log starts empty."""
    idp, bridge = _shared_idp
    idp.requests.clear()
    return idp, bridge


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def rejected(verify: Verify, bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    """Assert that ``token`` is rejected with exactly ``cls`` and ``code``; return the error."""
    with pytest.raises(InvalidToken) as info:
        verify(bridge, token)
    assert type(info.value) is cls, f"expected {cls.__name__}, got {type(info.value).__name__}: {info.value}"
    assert info.value.code == code
    return info.value


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with an arbitrary signature (for ``none`` and HMAC tokens)."""
    h = _b64(json.dumps(header).encode())
    p = _b64(json.dumps(claims).encode())
    return f"{h}.{p}.{_b64(signature)}"


# -- routing by exact issuer ------------------------------------------------------------------------


def test_configured_issuer_is_accepted(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, idp.mint(sub="u1"))
    assert vt.issuer == "https://idp.test"
    assert vt.subject == "u1"
    assert len(idp.requests_to("jwks")) == 1


def test_unknown_issuer_is_rejected_without_any_request(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    token = idp.mint(iss="https://attacker.test")
    err = rejected(verify, bridge, token, UntrustedIssuer, "untrusted_issuer")
    assert err.issuer is None  # routing never got as far as a configured issuer
    assert idp.requests == []


@pytest.mark.parametrize(
    "iss",
    [
        "https://idp.test/",  # trailing slash
        "HTTPS://IDP.TEST",  # case
        "https://IDP.test",  # host case only
        "https://idp.test:443",  # explicit default port
        "https://idp.test:8443",  # another port
        " https://idp.test",  # leading whitespace
        "https://idp.test ",  # trailing whitespace
        "https://idp.test\n",  # trailing newline
        "https://idp.test\u200b",  # zero-width space
        "https://idp.test.",  # trailing dot (FQDN form)
        "https://idp.test?x=1",  # query
        "https://idp.test#",  # empty fragment
        "https://idp.t\u0435st",  # Cyrillic look-alike letter
        "http://idp.test",  # scheme downgrade
        "https://idp.tes",  # prefix
        "https://idp.test/tenant",  # extension
        "",
    ],
    ids=repr,
)
def test_look_alike_issuers_are_rejected_without_any_request(
    verify: Verify, quiet: tuple[MockIdP, Bridge], iss: str
) -> None:
    idp, bridge = quiet
    rejected(verify, bridge, idp.mint(iss=iss), UntrustedIssuer, "untrusted_issuer")
    assert idp.requests == []


@pytest.mark.parametrize(
    "iss",
    [["https://idp.test"], {"iss": "https://idp.test"}, 1, 1.5, True, None],
    ids=["list", "object", "int", "float", "bool", "null"],
)
def test_non_string_issuer_is_rejected_without_any_request(
    verify: Verify, quiet: tuple[MockIdP, Bridge], iss: object
) -> None:
    idp, bridge = quiet
    key = idp.key_for("RS256")
    claims = idp.claims()
    claims["iss"] = iss  # json null too: mint() would drop a None claim
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    token = idp.sign_raw(json.dumps(header).encode(), json.dumps(claims).encode(), key)
    rejected(verify, bridge, token, UntrustedIssuer, "untrusted_issuer")
    assert idp.requests == []


def test_missing_issuer_is_rejected_without_any_request(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    rejected(verify, bridge, idp.mint(iss=None), UntrustedIssuer, "untrusted_issuer")
    assert idp.requests == []


# -- two issuers ------------------------------------------------------------------------------------


@pytest.fixture
def idp_b(clock: FrozenClock) -> MockIdP:
    """A second trusted issuer with its own RS256 key."""
    return MockIdP(issuer="https://idp-b.test", audience="my-client", clock=clock)


@pytest.fixture
def two_issuer_bridge(idp: MockIdP, idp_b: MockIdP, clock: FrozenClock) -> Iterator[Bridge]:
    transport = mock_transport(idp, idp_b)
    bridge = Bridge.from_dict(
        {"issuers": [idp.issuer_config(), idp_b.issuer_config(algorithms=["RS256"])]},
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
    )
    yield bridge
    bridge.close()


def test_each_issuer_is_verified_with_its_own_keys(
    verify: Verify, idp: MockIdP, idp_b: MockIdP, two_issuer_bridge: Bridge
) -> None:
    assert set(two_issuer_bridge.issuers) == {"https://idp.test", "https://idp-b.test"}
    assert verify(two_issuer_bridge, idp_b.mint(sub="from-b")).issuer == "https://idp-b.test"
    assert idp.requests == []  # B's token made no request to A
    assert len(idp_b.requests_to("jwks")) == 1
    vt = verify(two_issuer_bridge, idp.mint(sub="from-a", alg="ES256"))
    assert (vt.issuer, vt.subject, vt.algorithm) == ("https://idp.test", "from-a", "ES256")
    assert len(idp.requests_to("jwks")) == 1


def test_token_claiming_a_but_signed_by_b_with_bs_kid_is_rejected(
    verify: Verify, idp: MockIdP, idp_b: MockIdP, two_issuer_bridge: Bridge
) -> None:
    token = idp_b.mint(iss=idp.issuer)  # B's key and kid, A's issuer
    err = rejected(verify, two_issuer_bridge, token, UnknownKey, "unknown_key")
    assert err.issuer == idp.issuer
    assert idp_b.requests == []  # keys are looked up under the claimed issuer only


def test_token_claiming_a_but_signed_by_b_with_as_kid_is_rejected(
    verify: Verify, idp: MockIdP, idp_b: MockIdP, two_issuer_bridge: Bridge
) -> None:
    token = idp_b.mint(iss=idp.issuer, kid=idp.key_for("RS256").kid)
    err = rejected(verify, two_issuer_bridge, token, BadSignature, "bad_signature")
    assert err.issuer == idp.issuer


def test_algorithm_allowed_for_one_issuer_is_refused_for_the_other(
    verify: Verify, idp: MockIdP, idp_b: MockIdP, two_issuer_bridge: Bridge
) -> None:
    # B allows only RS256; an ES256 token claiming B is refused before any fetch.
    token = idp_b.mint(alg="ES256")
    idp_b.requests.clear()  # key_for() above made no request, but be explicit
    rejected(verify, two_issuer_bridge, token, DisallowedAlgorithm, "disallowed_algorithm")
    assert idp_b.requests == []


# -- algorithm allow-list ---------------------------------------------------------------------------


def test_allow_list_rejects_other_algorithm_without_any_request(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge(issuer={"algorithms": ["RS256"]})
    err = rejected(verify, bridge, idp.mint(alg="ES256"), DisallowedAlgorithm, "disallowed_algorithm")
    assert err.issuer == idp.issuer
    assert idp.requests == []
    assert verify(bridge, idp.mint(alg="RS256")).algorithm == "RS256"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_tokens_are_rejected_without_any_request(
    verify: Verify, quiet: tuple[MockIdP, Bridge], alg: str
) -> None:
    idp, bridge = quiet
    token = unsigned({"alg": alg, "typ": "JWT"}, idp.claims())
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")
    assert idp.requests == []


def test_none_token_with_a_signature_and_a_real_kid_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    token = unsigned({"alg": "none", "kid": idp.key_for().kid}, idp.claims(), b"\x00" * 32)
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")
    assert idp.requests == []


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_are_rejected_without_any_request(
    verify: Verify, quiet: tuple[MockIdP, Bridge], alg: str
) -> None:
    idp, bridge = quiet
    # The classic key-confusion forgery: HMAC keyed with the issuer's public JWK text.
    key = idp.key_for("RS256")
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(idp.claims()).encode())}"
    digest = getattr(hashlib, "sha" + alg[2:])
    mac = hmac.new(json.dumps(key.public_jwk).encode(), signing_input.encode(), digest).digest()
    rejected(verify, bridge, f"{signing_input}.{_b64(mac)}", DisallowedAlgorithm, "disallowed_algorithm")
    assert idp.requests == []


@pytest.mark.parametrize("alg", ["RS1", "ES256K", "RSA-OAEP", "dir", "rs256", "RS256 "])
def test_unknown_algorithm_names_are_rejected(
    verify: Verify, quiet: tuple[MockIdP, Bridge], alg: str
) -> None:
    idp, bridge = quiet
    key = idp.key_for("RS256")
    token = idp.mint(key=key, headers={"alg": alg})
    # mint signs with RS256 but the header names another alg: refused by name.
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")
    assert idp.requests == []


def test_algorithm_not_fitting_the_keys_type_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    # ES256 header, kid of the RSA key: the key cannot run ECDSA.
    rsa_kid = idp.key_for("RS256").kid
    token = idp.mint(key=idp.key_for("ES256"), kid=rsa_kid)
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")


def test_rsa_algorithm_with_the_kid_of_an_ec_key_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    token = idp.mint(alg="RS256", kid=idp.key_for("ES256").kid)
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")


@pytest.mark.parametrize(
    ("alg", "signer", "kid_of"),
    [("ES256", "ES256", "RS256"), ("RS256", "RS256", "ES256"), ("ES384", "ES256", "ES256")],
    ids=["ecdsa-with-rsa-key", "rsa-with-ec-key", "p384-alg-with-p256-key"],
)
def test_algorithm_not_fitting_a_key_without_jwk_alg_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge, alg: str, signer: str, kid_of: str
) -> None:
    # Without a JWK 'alg', only the key type and curve decide which algorithms fit.
    idp.serve_jwks({"keys": [{k: v for k, v in key.public_jwk.items() if k != "alg"} for key in idp.keys]})
    token = idp.mint(key=idp.key_for(signer), alg=alg, kid=idp.key_for(kid_of).kid)
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")


def test_jwk_alg_differing_from_token_alg_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    # The JWK says alg RS256; the same private key signs RS384 and PS256 tokens.
    rs256 = idp.key_for("RS256")
    assert rs256.public_jwk["alg"] == "RS256"
    for alg in ("RS384", "PS256"):
        rejected(verify, bridge, idp.mint(key=rs256, alg=alg), DisallowedAlgorithm, "disallowed_algorithm")


def test_jwk_without_alg_accepts_every_algorithm_of_its_key_type(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    rs256 = idp.key_for("RS256")
    jwk = {k: v for k, v in rs256.public_jwk.items() if k != "alg"}
    idp.serve_jwks({"keys": [jwk]})
    for alg in ("RS256", "RS512", "PS384"):
        assert verify(bridge, idp.mint(key=rs256, alg=alg)).algorithm == alg
    # ... but still not an algorithm of another key type.
    token = idp.mint(key=idp.key_for("ES256"), kid=rs256.kid)
    rejected(verify, bridge, token, DisallowedAlgorithm, "disallowed_algorithm")


# -- key selection ----------------------------------------------------------------------------------


def test_token_without_kid_is_accepted_when_one_key_fits(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    # Two published keys (RS256 and ES256), but only one fits each algorithm.
    assert verify(bridge, idp.mint(alg="RS256", headers={"kid": None})).key_id is None
    assert verify(bridge, idp.mint(alg="ES256", headers={"kid": None})).algorithm == "ES256"


def test_token_without_kid_is_rejected_when_several_keys_fit(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    idp.rotate_keys(keep_old=True)  # two RS256 keys are published
    assert sum(1 for k in idp.jwks()["keys"] if k["alg"] == "RS256") == 2
    rejected(verify, bridge, idp.mint(headers={"kid": None}), UnknownKey, "unknown_key")
    # With a kid, both keys still verify.
    assert verify(bridge, idp.mint()).key_id == idp.key_for("RS256").kid


def test_unknown_kid_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    err = rejected(verify, bridge, idp.mint(kid="no-such-kid"), UnknownKey, "unknown_key")
    assert err.issuer == idp.issuer
    assert "no-such-kid" not in str(err)


def test_kid_of_a_key_no_longer_published_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    old = idp.key_for("RS256")
    idp.rotate_keys(keep_old=False)
    rejected(verify, bridge, idp.mint(key=old), UnknownKey, "unknown_key")


# -- signatures -------------------------------------------------------------------------------------


def _flip_signature_byte(token: str, index: int) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(_unb64(sig))
    raw[index] ^= 0x01
    return f"{head}.{payload}.{_b64(bytes(raw))}"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("index", [0, -1])
def test_flipped_signature_byte_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge, alg: str, index: int
) -> None:
    token = idp.mint(alg=alg)
    assert verify(bridge, token).algorithm == alg  # the untouched token is good
    err = rejected(verify, bridge, _flip_signature_byte(token, index), BadSignature, "bad_signature")
    assert err.issuer == idp.issuer


def test_flipped_payload_byte_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    head, _, sig = idp.mint(sub="alice").split(".")
    forged_payload = _b64(json.dumps(idp.claims(sub="admin")).encode())
    rejected(verify, bridge, f"{head}.{forged_payload}.{sig}", BadSignature, "bad_signature")


def test_empty_signature_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    head, payload, _ = idp.mint().split(".")
    rejected(verify, bridge, f"{head}.{payload}.", BadSignature, "bad_signature")


def test_foreign_key_with_the_right_kid_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    token = idp.mint(key=foreign_rsa, kid=idp.key_for("RS256").kid)
    rejected(verify, bridge, token, BadSignature, "bad_signature")


def test_foreign_key_with_its_own_kid_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    rejected(verify, bridge, idp.mint(key=foreign_rsa), UnknownKey, "unknown_key")


def test_embedded_jwk_header_is_not_a_trust_source(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    token = idp.mint(key=foreign_rsa, kid=idp.key_for().kid, headers={"jwk": foreign_rsa.public_jwk})
    rejected(verify, bridge, token, BadSignature, "bad_signature")


# -- other algorithms -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519", "ES384", "ES512"])
def test_non_rsa_algorithms_verify_when_allowed(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge], alg: str
) -> None:
    idp.key_for(alg)  # publish the key before the bridge's first fetch
    bridge = make_bridge(issuer={"algorithms": [alg]})
    vt = verify(bridge, idp.mint(alg=alg))
    assert (vt.algorithm, vt.key_id) == (alg, idp.key_for(alg).kid)
    tampered = _flip_signature_byte(idp.mint(alg=alg), 3)
    rejected(verify, bridge, tampered, BadSignature, "bad_signature")


def test_ed25519_key_verifies_both_names_of_the_algorithm(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    key = idp.key_for("EdDSA")  # JWK alg "EdDSA"; RFC 9864 calls it "Ed25519"
    bridge = make_bridge(issuer={"algorithms": ["EdDSA", "Ed25519"]})
    assert verify(bridge, idp.mint(key=key, alg="Ed25519")).algorithm == "Ed25519"
    assert verify(bridge, idp.mint(key=key, alg="EdDSA")).algorithm == "EdDSA"


def test_ps256_verifies_when_allowed(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    key = idp.key_for("PS256")
    vt = verify(bridge, idp.mint(alg="PS256"))
    assert (vt.algorithm, vt.key_id) == ("PS256", key.kid)
    # A PKCS#1 v1.5 signature (RS256) over a PS256 header does not verify as PSS.
    header = json.dumps({"alg": "PS256", "kid": key.kid}).encode()
    token = idp.sign_raw(header, json.dumps(idp.claims()).encode(), key, alg="RS256")
    rejected(verify, bridge, token, BadSignature, "bad_signature")


@pytest.mark.parametrize("salt", [0, 20, 64], ids=["salt-0", "salt-20", "salt-64"])
def test_ps256_with_a_salt_other_than_the_hash_length_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge, salt: int
) -> None:
    # RFC 7518 section 3.5: the salt is as long as the hash output (32 bytes for PS256).
    key = idp.key_for("PS256")
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    signing_input = f"{_b64(json.dumps({'alg': 'PS256', 'kid': key.kid}).encode())}."
    signing_input += _b64(json.dumps(idp.claims()).encode())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    signature = key.private_key.sign(signing_input.encode(), pss, hashes.SHA256())
    rejected(verify, bridge, f"{signing_input}.{_b64(signature)}", BadSignature, "bad_signature")


def test_eddsa_token_is_refused_when_not_allowed(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    idp.key_for("EdDSA")
    bridge = make_bridge(issuer={"algorithms": ["RS256", "ES256"]})
    rejected(verify, bridge, idp.mint(alg="EdDSA"), DisallowedAlgorithm, "disallowed_algorithm")
    assert idp.requests == []


# -- attribution ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "alg_not_allowed",
        "alg_not_fitting_key",
        "jwk_alg_mismatch",
        "kidless_ambiguous",
        "unknown_kid",
        "bad_signature",
        "wrong_token_type",
        "expired",
        "wrong_audience",
        "invalid_sub",
    ],
)
def test_rejections_after_routing_name_the_configured_issuer(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge], foreign_rsa: SigningKey, case: str
) -> None:
    """``InvalidToken.issuer`` is the configured issuer once routing succeeded,
    whichever layer (allow-list, key set, signature, claims) refused the token."""
    bridge = make_bridge(issuer={"algorithms": ["RS256", "RS384", "ES256"]})
    rsa = idp.key_for("RS256")
    if case == "kidless_ambiguous":
        idp.rotate_keys(keep_old=True)
    tokens: dict[str, Callable[[], str]] = {
        "alg_not_allowed": lambda: idp.mint(key=rsa, alg="PS256"),
        "alg_not_fitting_key": lambda: idp.mint(key=idp.key_for("ES256"), kid=rsa.kid),
        "jwk_alg_mismatch": lambda: idp.mint(key=rsa, alg="RS384"),
        "kidless_ambiguous": lambda: idp.mint(headers={"kid": None}),
        "unknown_kid": lambda: idp.mint(kid="nope"),
        "bad_signature": lambda: idp.mint(key=foreign_rsa, kid=rsa.kid),
        "wrong_token_type": lambda: idp.mint(headers={"typ": "logout+jwt"}),
        "expired": lambda: idp.mint(expired=True),
        "wrong_audience": lambda: idp.mint(aud="other"),
        "invalid_sub": lambda: idp.mint(sub=""),
    }
    with pytest.raises(InvalidToken) as info:
        verify(bridge, tokens[case]())
    assert not isinstance(info.value, UntrustedIssuer)
    assert info.value.issuer == idp.issuer, f"{type(info.value).__name__} has issuer={info.value.issuer!r}"
