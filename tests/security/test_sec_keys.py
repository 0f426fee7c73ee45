"""KEY-*: JWK / JWK Set content (catalogue: docs/security.md).

The import rule is per entry: an unusable entry is skipped with a
``key_skipped`` event and the rest of the set is kept (KEY-12). So a token
naming a skipped key's kid gets UnknownKey (catalogue KeyNotFound/InvalidKey)
while the set has other usable keys, and KeySetUnavailable (``keyset_unavailable``,
a 503) when nothing usable is left. Both outcomes are pinned below. Unit tests
call ``federation._rfc7517.import_jwk`` (documented error: ``UnusableKey``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519
from cryptography.x509.oid import NameOID
from security_support import (
    BridgeFactory,
    Net,
    b64u,
    base_claims,
    expect_reject,
    hdr,
    jdump,
    jwks_response,
    signed,
)

from federation import Bridge
from federation._keys._documents import FetchFailed, parse_jwks
from federation._rfc7517 import UnusableKey, import_jwk, import_jwks
from federation.config import KeysConfig
from federation.errors import (
    BadSignature,
    ConfigError,
    DisallowedAlgorithm,
    KeySetUnavailable,
    UnknownKey,
)
from federation.events import KEY_SKIPPED
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key

Fresh = Callable[..., Bridge]


def _uint(value: int, length: int | None = None) -> str:
    return b64u(value.to_bytes(length or (value.bit_length() + 7) // 8 or 1, "big"))


def _num(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


@pytest.fixture
def es(idp: MockIdP) -> SigningKey:
    return idp.key_for("ES256")


def _serve_with(idp: MockIdP, *entries: Any, replace_kid: str | None = None) -> None:
    """Serve the issuer's own keys (minus ``replace_kid``) plus ``entries``."""
    keys = [k for k in idp.jwks()["keys"] if k.get("kid") != replace_kid]
    idp.serve_jwks({"keys": [*keys, *entries]})


def _unknown(bridge: Bridge, token: str) -> None:
    expect_reject(lambda: bridge.verify(token), UnknownKey, "unknown_key")


def _rsa_key(kid: str, bits: int, e: int = 65537) -> SigningKey:
    """An RSA signing key of any size (the toolkit warns below 2048 bits; cryptography does not)."""
    private = rsa.generate_private_key(public_exponent=e, key_size=bits)
    nums = private.public_key().public_numbers()
    return SigningKey(
        kid,
        "RS256",
        private,
        {"kty": "RSA", "kid": kid, "alg": "RS256", "n": _uint(nums.n), "e": _uint(nums.e)},
    )


def _refused(jwk: Any) -> None:
    with pytest.raises(UnusableKey):
        import_jwk(jwk)


# -- RSA --------------------------------------------------------------------------------------


def test_key_01_weak_rsa_modulus(fresh: Fresh, idp: MockIdP, bridges: BridgeFactory) -> None:
    weak = _rsa_key("weak-1024", 1024)
    _refused(weak.public_jwk)
    _refused({"kty": "RSA", "n": _uint((1 << 511) | 1), "e": "AQAB"})  # 512-bit
    _refused({"kty": "RSA", "n": _uint((1 << 2046) | 1), "e": "AQAB"})  # 2047-bit
    _serve_with(idp, weak.public_jwk)
    _unknown(fresh(), signed(hdr(weak), base_claims(idp), weak))
    assert KEY_SKIPPED in [e.name for e in bridges.events]


def test_key_01_set_with_only_weak_keys_is_unavailable(fresh: Fresh, idp: MockIdP) -> None:
    """Pinned: nothing usable left is a failed fetch (503), not an invalid token."""
    weak = _rsa_key("weak-1024", 1024)
    idp.serve_jwks({"keys": [weak.public_jwk]})
    err = expect_reject(lambda: fresh().verify(signed(hdr(weak), base_claims(idp), weak)), KeySetUnavailable)
    assert err.code == "keyset_unavailable" and err.reason == "no_usable_key"


def test_key_02_bad_rsa_exponents(rs: SigningKey) -> None:
    n = _num(rs.public_jwk["n"])
    for e in (1, 3, 17, 65538, 0, n, n + 2):
        jwk = {"kty": "RSA", "n": rs.public_jwk["n"], "e": _uint(e) if e else "AA"}
        _refused(jwk)
    _refused({"kty": "RSA", "n": _uint(n - 1), "e": "AQAB"})  # even modulus
    assert import_jwk({"kty": "RSA", "n": rs.public_jwk["n"], "e": _uint(65539)}).kty == "RSA"  # odd >= 65537


def test_key_02_e3_key_is_dropped_end_to_end(fresh: Fresh, idp: MockIdP) -> None:
    key = _rsa_key("e3", 2048, e=3)
    _serve_with(idp, key.public_jwk)
    _unknown(fresh(), signed(hdr(key), base_claims(idp), key))


def test_key_03_non_minimal_base64urluint(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """Policy (issue 10): a leading zero octet is another spelling of the same number, as
    OpenAM, Gluu and other IdPs publish. The key loads as that number (so it verifies only
    what the minimal key verifies, and compares equal to it), with a ``key_tolerated``
    warning; refusing it would take the whole issuer down."""
    n = rs.public_jwk["n"]
    long_e = dict(rs.public_jwk, e="AAEAAQ")
    long_n = dict(rs.public_jwk, n=b64u(b"\x00" + base64.urlsafe_b64decode(n + "==")))
    for jwk in (long_e, long_n):
        assert import_jwk(jwk).same_key_as(import_jwk(rs.public_jwk))
        _serve_with(idp, jwk, replace_kid=rs.kid)
        bridge = fresh()
        assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).key_id == rs.kid
        forged = generate_signing_key("RS256", kid=rs.kid)
        forgery = signed(hdr(forged), base_claims(idp), forged)
        expect_reject(lambda b=bridge, t=forgery: b.verify(t), BadSignature, "bad_signature")


def test_key_04_roca_weak_rsa_key(shared_dir: Path) -> None:
    """Wycheproof json_web_key tcId 7 (jws_rsa_roca_key): the key must be dropped."""
    data = json.loads((shared_dir / "vectors/wycheproof/testvectors_v1/json_web_key_test.json").read_text())
    group = next(g for g in data["testGroups"] if g["comment"] == "jws_rsa_roca_key")
    public = group["public"]["keys"][0] if "keys" in group["public"] else group["public"]
    assert _num(public["n"]).bit_length() >= 2048  # passes the size rule: only a ROCA test catches it
    _refused(public)


# -- EC ---------------------------------------------------------------------------------------


def test_key_05_ec_point_not_on_the_curve(fresh: Fresh, idp: MockIdP, es: SigningKey) -> None:
    y = base64.urlsafe_b64decode(es.public_jwk["y"] + "==")
    off_curve = dict(es.public_jwk, y=b64u(y[:-1] + bytes([y[-1] ^ 1])))
    _refused(off_curve)
    _serve_with(idp, off_curve, replace_kid=es.kid)
    _unknown(fresh(), signed(hdr(es), base_claims(idp), es))


def test_key_06_malformed_ec_jwk(es: SigningKey) -> None:
    jwk = es.public_jwk
    x = base64.urlsafe_b64decode(jwk["x"] + "==")
    y = base64.urlsafe_b64decode(jwk["y"] + "==")
    p256 = 2**256 - 2**224 + 2**192 + 2**96 - 1
    bad = [
        dict(jwk, x=b64u(x[1:])),  # 31 bytes
        dict(jwk, y=b64u(b"\x00" + y)),  # 33 bytes
        dict(jwk, x=_uint(p256, 32)),  # x = p
        dict(jwk, x=_uint(p256 + 1, 32)),  # x > p
        dict(jwk, x=b64u(bytes(32)), y=b64u(bytes(32))),  # "point at infinity"
        dict(jwk, crv="secp256k1"),
        dict(jwk, crv="P-256 "),
        dict(jwk, crv="p-256"),
        dict(jwk, crv="P-384"),  # coordinates of the wrong size for the curve
        dict(jwk, alg="ES384"),  # crv inconsistent with the JWK alg
        dict(jwk, alg="ES512"),
        {k: v for k, v in jwk.items() if k != "crv"},
        {k: v for k, v in jwk.items() if k != "y"},
        dict(jwk, x=123),
    ]
    for entry in bad:
        _refused(entry)


# -- what a remote key set may contain ----------------------------------------------------------


def test_key_07_symmetric_key_in_a_remote_jwks(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    import hashlib
    import hmac

    secret = b"s" * 32
    oct_key = {"kty": "oct", "kid": rs.kid, "k": b64u(secret), "alg": "HS256"}
    _refused(oct_key)
    _serve_with(idp, oct_key)
    bridge = fresh()
    assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).key_id == rs.kid  # the RSA key is unaffected
    si = f"{b64u(jdump({'alg': 'HS256', 'kid': rs.kid}))}.{b64u(jdump(base_claims(idp)))}"
    token = si + "." + b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())
    expect_reject(lambda: bridge.verify(token), DisallowedAlgorithm, "disallowed_algorithm")


def test_key_07_jwks_of_only_symmetric_keys(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    idp.serve_jwks({"keys": [{"kty": "oct", "kid": "h", "k": b64u(b"s" * 32)}]})
    expect_reject(lambda: fresh().verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable)


def test_key_08_private_material_in_the_fetched_jwks(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, bridges: BridgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Pinned policy: the entry carrying private members is skipped (never stored) with a
    ``key_skipped`` event; the rest of the set stays usable."""
    private = rs.private_key.private_numbers()  # type: ignore[union-attr]
    d = _uint(private.d)
    with_private = dict(rs.public_jwk, d=d, p=_uint(private.p), q=_uint(private.q))
    for member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"):
        _refused(dict(rs.public_jwk, **{member: "AQAB"}))
    _serve_with(idp, with_private, replace_kid=rs.kid)
    caplog.set_level("DEBUG")
    bridge = fresh()
    _unknown(bridge, signed(hdr(rs), base_claims(idp), rs))
    es = idp.key_for("ES256")
    assert bridge.verify(signed(hdr(es), base_claims(idp), es)).key_id == es.kid
    assert KEY_SKIPPED in [e.name for e in bridges.events]
    assert d[:40] not in caplog.text and all(d[:40] not in repr(e) for e in bridges.events)


@pytest.mark.parametrize(
    "members",
    [
        {"use": "enc"},
        {"key_ops": ["encrypt", "wrapKey"]},
        {"use": "sig", "key_ops": ["encrypt"]},
        {"use": "enc", "key_ops": ["verify"]},
        {"key_ops": []},
        {"key_ops": "verify"},
        {"use": "SIG"},
    ],
    ids=repr,
)
def test_key_09_encryption_key_used_for_signatures(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, members: dict[str, Any]
) -> None:
    jwk = dict(rs.public_jwk, **members)
    _refused(jwk)
    _serve_with(idp, jwk, replace_kid=rs.kid)
    _unknown(fresh(), signed(hdr(rs), base_claims(idp), rs))


def test_key_09_signature_use_is_fine(rs: SigningKey) -> None:
    assert import_jwk(dict(rs.public_jwk, use="sig", key_ops=["verify"])).kid == rs.kid


@pytest.mark.parametrize("alg", ["none", "HS256", "RSA1_5", "RSA-OAEP", "ES256", "EdDSA", "", 1])
def test_key_10_jwk_alg_none_hmac_or_encryption(fresh: Fresh, idp: MockIdP, rs: SigningKey, alg: Any) -> None:
    jwk = dict(rs.public_jwk, alg=alg)
    _refused(jwk)
    _serve_with(idp, jwk, replace_kid=rs.kid)
    _unknown(fresh(), signed(hdr(rs), base_claims(idp), rs))


def test_key_11_duplicate_kid_inside_one_jwks(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned policy: two different keys under one kid are both unusable (never first-wins)."""
    other = generate_signing_key("RS256", kid=rs.kid)
    for order in ([rs.public_jwk, other.public_jwk], [other.public_jwk, rs.public_jwk]):
        idp.serve_jwks({"keys": [*order, idp.key_for("ES256").public_jwk]})
        bridge = fresh()
        _unknown(bridge, signed(hdr(rs), base_claims(idp), rs))
        _unknown(bridge, signed(hdr(other), base_claims(idp), other))


def test_key_11_exact_repeat_is_harmless(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    idp.serve_jwks({"keys": [rs.public_jwk, dict(rs.public_jwk)]})
    assert fresh().verify(signed(hdr(rs), base_claims(idp), rs)).key_id == rs.kid


def test_key_12_unparseable_entries_next_to_good_ones(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, bridges: BridgeFactory
) -> None:
    junk = [{"kty": "PQC"}, {"kty": "RSA"}, "string", None, 1, [], {"kty": "EC", "crv": "P-256"}, {}]
    idp.serve_jwks({"keys": [rs.public_jwk, *junk]})
    assert fresh().verify(signed(hdr(rs), base_claims(idp), rs)).key_id == rs.kid
    assert [e.name for e in bridges.events].count(KEY_SKIPPED) == len(junk)


_BAD_DOCUMENTS: list[tuple[str, bytes, str]] = [
    ("not-json", b"<<<", "not_json"),
    ("keys-object", b'{"keys":{}}', "not_a_jwk_set"),
    ("top-level-array", b'[{"kty":"RSA"}]', "not_json"),
    ("html", b"<html><body>error</body></html>", "not_json"),
    ("no-keys", b"{}", "not_a_jwk_set"),
    ("empty-keys", b'{"keys":[]}', "no_usable_key"),
    ("nan", b'{"keys":[],"x":NaN}', "not_json"),
    ("duplicate", b'{"keys":[],"keys":[]}', "not_json"),
]


@pytest.mark.parametrize(
    "body,reason", [(b, r) for _i, b, r in _BAD_DOCUMENTS], ids=[i for i, _b, _r in _BAD_DOCUMENTS]
)
def test_key_13_malformed_jwks_document(body: bytes, reason: str) -> None:
    from federation._keys._http import FetchResponse

    with pytest.raises(FetchFailed) as info:
        parse_jwks(FetchResponse(200, {"content-type": "application/json"}, body), KeysConfig())
    assert info.value.reason == reason


def test_key_13_html_content_type_is_refused(rs: SigningKey) -> None:
    from federation._keys._http import FetchResponse

    body = json.dumps({"keys": [rs.public_jwk]}).encode()
    with pytest.raises(FetchFailed):
        parse_jwks(FetchResponse(200, {"content-type": "text/html"}, body), KeysConfig())


def test_key_13_key_count_cap(rs: SigningKey) -> None:
    config = KeysConfig()
    assert config.max_keys == 100
    hundred = {"keys": [dict(rs.public_jwk, kid=f"k{i}") for i in range(100)]}
    assert len(parse_jwks(jwks_response(hundred), config)[0]) == 100
    for count in (101, 10_000):
        doc = {"keys": [{"kty": "RSA"}] * count}
        with pytest.raises(FetchFailed) as info:
            parse_jwks(jwks_response(doc), config)
        assert info.value.reason == "too_many_keys"
        with pytest.raises(UnusableKey):
            import_jwks(doc, max_keys=100)


@pytest.mark.parametrize("name,body,reason", _BAD_DOCUMENTS[:5], ids=[i for i, _b, _r in _BAD_DOCUMENTS[:5]])
def test_key_13_bad_document_keeps_the_last_good_key_set(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, clock: FrozenClock, name: str, body: bytes, reason: str
) -> None:
    bridge = fresh()
    token = signed(hdr(rs), base_claims(idp, exp=int(clock()) + 7200), rs)
    assert bridge.verify(token).subject == "u-1"
    idp.serve_jwks(body)
    clock.advance(400)  # past the 300 s max-age: a refresh is due, and fails
    assert bridge.verify(token).subject == "u-1"  # stale-if-error
    assert bridge.verify(token).subject == "u-1"


def test_key_13_bad_document_without_a_good_one_is_unavailable(
    fresh: Fresh, idp: MockIdP, rs: SigningKey
) -> None:
    idp.serve_jwks(b"<html>502 Bad Gateway</html>")
    err = expect_reject(lambda: fresh().verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable)
    assert err.code == "keyset_unavailable"


def test_key_14_kid_collision_across_issuers(bridges: BridgeFactory, idp: MockIdP, idp_b: MockIdP) -> None:
    ka = generate_signing_key("ES256", kid="1")
    kb = generate_signing_key("ES256", kid="1")
    idp.serve_jwks({"keys": [ka.public_jwk]})
    idp_b.serve_jwks({"keys": [kb.public_jwk]})
    bridge = bridges({"issuers": [idp.issuer_config(), idp_b.issuer_config()]}, Net(idp, idp_b))
    assert bridge.verify(signed(hdr(kb), base_claims(idp_b), kb)).issuer == idp_b.issuer  # B's key now cached
    expect_reject(lambda: bridge.verify(signed(hdr(kb), base_claims(idp), kb)), BadSignature, "bad_signature")
    assert bridge.verify(signed(hdr(ka), base_claims(idp), ka)).issuer == idp.issuer


@pytest.mark.parametrize("hs", ["HS256", "HS384", "HS512"])
def test_key_15_hmac_when_only_asymmetric_is_allowed(fresh: Fresh, net: Net, idp: MockIdP, hs: str) -> None:
    from security_support import raw_token

    expect_reject(
        lambda: fresh().verify(raw_token({"alg": hs}, base_claims(idp), b"x" * 32)), DisallowedAlgorithm
    )
    assert net.requests == []


@pytest.mark.parametrize(
    "extra",
    [
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
        {"secret": "s"},
        {"hmac_key": "s"},
    ],
    ids=repr,
)
def test_key_15_oct_keys_cannot_be_configured(idp: MockIdP, extra: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(**extra)]})


_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
_NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
]


def test_key_16_x25519_key_used_for_eddsa() -> None:
    x = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    for alg in (None, "EdDSA", "Ed25519"):
        jwk = {"kty": "OKP", "crv": "X25519", "x": b64u(x)}
        if alg:
            jwk["alg"] = alg
        _refused(jwk)
    _refused({"kty": "OKP", "crv": "Ed448", "x": b64u(bytes(57))})


@pytest.mark.parametrize("point", _SMALL_ORDER + _NON_CANONICAL)
def test_key_16_ed25519_small_order_or_non_canonical_key(point: str) -> None:
    _refused({"kty": "OKP", "crv": "Ed25519", "x": b64u(bytes.fromhex(point))})


def test_key_16_small_order_key_cannot_verify_a_forgery(fresh: Fresh, idp: MockIdP) -> None:
    """With the identity point as public key, (R = identity, S = 0) 'verifies' any message."""
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "ed-weak", "x": b64u(bytes.fromhex(_SMALL_ORDER[0]))}
    _serve_with(idp, jwk)
    si = f"{b64u(jdump({'alg': 'EdDSA', 'kid': 'ed-weak'}))}.{b64u(jdump(base_claims(idp, sub='admin')))}"
    forged = si + "." + b64u(bytes.fromhex(_SMALL_ORDER[0]) + bytes(32))
    with pytest.raises((UnknownKey, BadSignature)):
        fresh().verify(forged)


def _cert_for(subject_key: SigningKey, signer: SigningKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(subject_key.private_key.public_key())
        .serial_number(3)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .sign(signer.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_key_17_inconsistent_x5c(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, attacker: dict[str, SigningKey]
) -> None:
    kx = attacker["RS256"]
    matching = dict(rs.public_jwk, x5c=[_cert_for(rs, rs)])
    assert import_jwk(matching).kid == rs.kid  # control
    for x5c in ([_cert_for(kx, kx)], [_cert_for(kx, rs)], ["not base64!"], [], "abc", [b64u(b"junk")]):
        mismatched = dict(rs.public_jwk, x5c=x5c)
        _refused(mismatched)
    _serve_with(idp, dict(rs.public_jwk, x5c=[_cert_for(kx, kx)]), replace_kid=rs.kid)
    _unknown(fresh(), signed(hdr(rs), base_claims(idp), rs))


def test_key_18_oversized_rsa_key(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    huge = {"kty": "RSA", "kid": "huge", "alg": "RS256", "n": _uint((1 << 16383) | 1), "e": "AQAB"}
    _refused(huge)
    _refused(dict(huge, n=_uint((1 << 8192) | 1)))  # 8193 bits
    assert import_jwk(dict(huge, n=_uint((1 << 8191) | 1))).kty == "RSA"  # 8192 bits: the documented maximum
    _serve_with(idp, huge)
    _unknown(fresh(), signed(hdr(rs, kid="huge"), base_claims(idp), rs))
