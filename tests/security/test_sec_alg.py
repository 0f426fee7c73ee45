"""ALG-*: algorithm attacks (catalogue: docs/security.md).

Catalogue class -> ours: UnsupportedAlgorithm -> DisallowedAlgorithm
(``disallowed_algorithm``); InvalidHeader -> MalformedToken (``malformed``);
InvalidSignature -> BadSignature (``bad_signature``); InvalidKey -> the key is
skipped at import, so the lookup ends in UnknownKey (``unknown_key``) or, when
the named key exists but cannot do the algorithm, DisallowedAlgorithm.
Allow-list rejections happen in routing, before any key lookup: NO-IO.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from security_support import Net, b64u, base_claims, expect_reject, hdr, jdump, raw_token, signed

from federation import Bridge
from federation._rfc7517 import import_jwk
from federation.errors import BadSignature, ConfigError, DisallowedAlgorithm, MalformedToken, UnknownKey
from federation.testing import MockIdP, SigningKey, generate_signing_key

Fresh = Callable[..., Bridge]
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _disallowed_no_io(bridge: Bridge, net: Net, token: str) -> None:
    expect_reject(lambda: bridge.verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    assert net.requests == []


def _hs(header: dict[str, Any], claims: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64u(jdump(header))}.{b64u(jdump(claims))}"
    return signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), digest).digest())


# -- ALG-01..05 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": "JWT"},
        {"alg": "none"},
        {"alg": "none", "kid": "RSKID"},
    ],
    ids=["typ", "bare", "real-kid"],
)
def test_alg_01_none_unsigned(fresh: Fresh, net: Net, idp: MockIdP, header: dict[str, Any]) -> None:
    header = {k: (idp.key_for("RS256").kid if v == "RSKID" else v) for k, v in header.items()}
    _disallowed_no_io(fresh(), net, raw_token(header, base_claims(idp)))


@pytest.mark.parametrize("name", ["none", "None", "NONE", " none"])
def test_alg_01_none_can_never_be_configured(idp: MockIdP, name: str) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(algorithms=["RS256", name])]})


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE", "nonE", "none ", " none", "none\u0000", "NoNe\t"])
def test_alg_02_none_case_variants(fresh: Fresh, net: Net, idp: MockIdP, alg: str) -> None:
    _disallowed_no_io(fresh(), net, raw_token({"alg": alg, "typ": "JWT"}, base_claims(idp)))


def test_alg_03_none_with_a_signature(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    kid = idp.key_for("RS256").kid
    for sig in (b"\x00\x00\x00", b"x" * 256):
        _disallowed_no_io(fresh(), net, raw_token({"alg": "none", "kid": kid}, base_claims(idp), sig))


@pytest.mark.parametrize("alg", [None, "", 256, ["RS256"], {"x": 1}, True, 0], ids=repr)
def test_alg_04_alg_missing_or_wrong_type(fresh: Fresh, net: Net, idp: MockIdP, alg: object) -> None:
    rs = idp.key_for("RS256")
    header: dict[str, Any] = {"kid": rs.kid, "typ": "JWT"}
    if alg is not None:
        header["alg"] = alg
    token = signed(header, base_claims(idp), rs, alg="RS256")
    expect_reject(lambda: fresh().verify(token), MalformedToken, "malformed")
    assert net.requests == []


def test_alg_04_alg_null_member(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    rs = idp.key_for("RS256")
    token = signed(b'{"alg":null,"kid":"%s"}' % rs.kid.encode(), base_claims(idp), rs, alg="RS256")
    expect_reject(lambda: fresh().verify(token), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize("jwk_alg", ["RS256", None], ids=["jwk-alg-RS256", "jwk-without-alg"])
@pytest.mark.parametrize("token_alg", ["RS512", "PS256", "RS384"])
def test_alg_05_valid_algorithm_outside_the_allow_list(
    fresh: Fresh, net: Net, idp: MockIdP, jwk_alg: str | None, token_alg: str
) -> None:
    rs = idp.key_for("RS256")
    jwks = idp.jwks()
    for k in jwks["keys"]:
        if jwk_alg is None:
            k.pop("alg", None)
    idp.serve_jwks(jwks)
    bridge = fresh(algorithms=["RS256", "ES256"])
    _disallowed_no_io(bridge, net, signed(hdr(rs, alg=token_alg), base_claims(idp), rs, alg=token_alg))
    assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).algorithm == "RS256"  # control


# -- ALG-06..08: HMAC key confusion ------------------------------------------------------------


def _self_signed_cert_pem(key: SigningKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key.private_key, hashes.SHA256() if not key.alg.startswith("Ed") else None)  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _secrets(key: SigningKey) -> dict[str, bytes]:
    """Every serialisation of the public key an attacker may MAC with (ALG-06)."""
    pub = key.private_key.public_key()
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    pem = pub.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo)
    out = {
        "pem-spki": pem,
        "pem-spki-no-final-newline": pem.rstrip(b"\n"),
        "pem-leading-whitespace": b"  \n" + pem,
        "der-spki": pub.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo),
        "openssh": pub.public_bytes(enc.OpenSSH, fmt.OpenSSH),
        "x509-pem": _self_signed_cert_pem(key),
        "jwk-json": json.dumps(key.public_jwk).encode(),
        "jwk-json-compact": jdump(key.public_jwk),
    }
    if isinstance(pub, rsa.RSAPublicKey):
        n = pub.public_numbers().n
        out["pem-pkcs1"] = pub.public_bytes(enc.PEM, fmt.PKCS1)
        out["der-pkcs1"] = pub.public_bytes(enc.DER, fmt.PKCS1)
        out["raw-n"] = n.to_bytes(256, "big")
    if isinstance(pub, ec.EllipticCurvePublicKey):
        out["x962-uncompressed"] = pub.public_bytes(enc.X962, fmt.UncompressedPoint)
    return out


@pytest.mark.parametrize("hs", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("key_alg", ["RS256", "ES256", "EdDSA"])
def test_alg_06_rs_es_to_hs_key_confusion(
    fresh: Fresh, net: Net, idp: MockIdP, hs: str, key_alg: str
) -> None:
    key = idp.key_for(key_alg)
    bridge = fresh()
    for _name, secret in _secrets(key).items():
        _disallowed_no_io(
            bridge, net, _hs({"alg": hs, "kid": key.kid, "typ": "JWT"}, base_claims(idp), secret, hs)
        )


@pytest.mark.parametrize("key_alg", ["RS256", "ES256", "EdDSA"])
def test_alg_06_an_asymmetric_key_object_can_never_run_hmac(idp: MockIdP, key_alg: str) -> None:
    key = import_jwk(idp.key_for(key_alg).public_jwk)
    for hs in ("HS256", "HS384", "HS512", "none"):
        expect_reject(lambda h=hs: key.verifier(h), DisallowedAlgorithm, "disallowed_algorithm")


@pytest.mark.parametrize("hs", ["HS256", "HS384", "HS512"])
def test_alg_06_hmac_can_never_be_configured(idp: MockIdP, hs: str) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(algorithms=[hs])]})


def test_alg_07_key_confusion_with_a_derived_modulus(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    """The attacker recovers ``n`` from two signatures (sig2n); we use the known ``n`` directly:
    whatever encoding of it is the MAC key, the result is ALG-06's."""
    rs = idp.key_for("RS256")
    n = rs.private_key.public_key().public_numbers().n  # type: ignore[union-attr]
    bridge = fresh()
    for secret in (
        n.to_bytes(256, "big"),
        str(n).encode(),
        hex(n).encode(),
        b64u(n.to_bytes(256, "big")).encode(),
    ):
        _disallowed_no_io(bridge, net, _hs({"alg": "HS256", "kid": rs.kid}, base_claims(idp), secret))


@pytest.mark.parametrize(
    "secret", [b"", b"secret", b"password", b"123456", b"your-256-bit-secret", b"1"], ids=repr
)
def test_alg_08_blank_or_weak_hmac_secret(fresh: Fresh, net: Net, idp: MockIdP, secret: bytes) -> None:
    _disallowed_no_io(fresh(), net, _hs({"alg": "HS256", "typ": "JWT"}, base_claims(idp), secret))


# -- ALG-09..11: ECDSA -------------------------------------------------------------------------


def _es256_parts(idp: MockIdP) -> tuple[SigningKey, str, int, int]:
    es = idp.key_for("ES256")
    signing_input = f"{b64u(jdump(hdr(es)))}.{b64u(jdump(base_claims(idp)))}"
    assert isinstance(es.private_key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(es.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return es, signing_input, r, s


def _raw(r: int, s: int, size: int = 32) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def test_alg_09_psychic_signature(fresh: Fresh, idp: MockIdP) -> None:
    _es, signing_input, _r, _s = _es256_parts(idp)
    bridge = fresh()
    specials = [0, 1, P256_N - 1, P256_N]
    forged = [bytes(64), b"\x30\x06\x02\x01\x00\x02\x01\x00"]  # 64 zero bytes; DER MAYCAQACAQA
    forged += [_raw(r, s) for r in specials for s in specials]
    for sig in forged:
        token = signing_input + "." + b64u(sig)
        expect_reject(lambda t=token: bridge.verify(t), BadSignature, "bad_signature")


def test_alg_10_wrong_ecdsa_signature_encoding_or_length(fresh: Fresh, idp: MockIdP) -> None:
    _es, signing_input, r, s = _es256_parts(idp)
    bridge = fresh()
    assert bridge.verify(signing_input + "." + b64u(_raw(r, s))).subject == "u-1"  # control
    variants = [
        encode_dss_signature(r, s),  # ASN.1 DER
        _raw(r, s)[:63],
        _raw(r, s) + b"\x00",
        _raw(r, s) + bytes(8),  # 72 bytes
        r.to_bytes(33, "big") + s.to_bytes(32, "big"),  # a leading zero too many
        _raw(r, s)[1:],  # first byte dropped
        _raw(r + P256_N, s) if r + P256_N < 2**256 else _raw(r, s + P256_N) if s + P256_N < 2**256 else b"",
        _raw(r, s, 66),  # an ES512-sized signature
    ]
    for sig in variants:
        token = signing_input + "." + b64u(sig)
        expect_reject(lambda t=token: bridge.verify(t), BadSignature, "bad_signature")


def test_alg_10_es512_signature_must_be_132_bytes(fresh: Fresh, idp: MockIdP) -> None:
    es = idp.key_for("ES512")
    signing_input = f"{b64u(jdump(hdr(es)))}.{b64u(jdump(base_claims(idp)))}"
    assert isinstance(es.private_key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(es.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA512())))
    bridge = fresh()
    assert bridge.verify(signing_input + "." + b64u(_raw(r, s, 66))).algorithm == "ES512"
    for sig in (_raw(r, s, 66)[2:], _raw(r, s, 67), encode_dss_signature(r, s), _raw(r, s, 66)[:131]):
        token = signing_input + "." + b64u(sig)
        expect_reject(lambda t=token: bridge.verify(t), BadSignature, "bad_signature")


def test_alg_11_ecdsa_malleability_is_accepted(fresh: Fresh, idp: MockIdP) -> None:
    """Pinned: (r, n-s) verifies at the crypto level, so the library never keys replay or
    idempotency on signature bytes (the verified result exposes no signature at all)."""
    _es, signing_input, r, s = _es256_parts(idp)
    bridge = fresh()
    first = bridge.verify(signing_input + "." + b64u(_raw(r, s)))
    second = bridge.verify(signing_input + "." + b64u(_raw(r, P256_N - s)))
    assert first.claims == second.claims
    assert not hasattr(first, "signature")


# -- ALG-12..13: algorithm / key binding -------------------------------------------------------


def test_alg_12_algorithm_and_key_type_mismatch(fresh: Fresh, idp: MockIdP) -> None:
    rs, es = idp.key_for("RS256"), idp.key_for("ES256")
    es384, es512 = idp.key_for("ES384"), idp.key_for("ES512")
    bridge = fresh()
    cases = [
        ("ES256", rs, es),  # ES256 header, kid of an RSA key
        ("RS256", es, rs),  # RS256 header, kid of an EC key
        ("ES256", es384, es),  # ES256 with a P-384 key's kid
        ("ES512", es, es512),  # ES512 with a P-256 key's kid
        ("EdDSA", rs, idp.key_for("EdDSA")),
    ]
    for alg, named, signer in cases:
        token = signed(hdr(named, alg=alg), base_claims(idp), signer, alg=alg)
        expect_reject(lambda t=token: bridge.verify(t), DisallowedAlgorithm, "disallowed_algorithm")


def test_alg_12_mismatch_with_jwks_entries_without_alg(fresh: Fresh, idp: MockIdP) -> None:
    rs, es = idp.key_for("RS256"), idp.key_for("ES256")
    jwks = idp.jwks()
    for k in jwks["keys"]:
        k.pop("alg")
    idp.serve_jwks(jwks)
    bridge = fresh()
    for alg, named, signer in (("ES256", rs, es), ("RS256", es, rs), ("ES384", es, idp.key_for("ES384"))):
        token = signed(hdr(named, alg=alg), base_claims(idp), signer, alg=alg)
        expect_reject(lambda t=token: bridge.verify(t), DisallowedAlgorithm, "disallowed_algorithm")


def test_alg_12_eddsa_with_an_x25519_key(fresh: Fresh, idp: MockIdP) -> None:
    """An OKP X25519 entry is not a signature key: skipped at import, so its kid is unknown."""
    from cryptography.hazmat.primitives.asymmetric import x25519

    x_pub = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    ed = generate_signing_key("EdDSA", kid="x-1")
    idp.serve_jwks(
        {"keys": [*idp.jwks()["keys"], {"kty": "OKP", "crv": "X25519", "x": b64u(x_pub), "kid": "x-1"}]}
    )
    token = signed(hdr(ed), base_claims(idp), ed)
    expect_reject(lambda: fresh().verify(token), UnknownKey, "unknown_key")


@pytest.mark.parametrize("token_alg", ["RS256", "PS256", "RS512", "PS384"])
def test_alg_13_token_alg_differs_from_the_jwk_alg(fresh: Fresh, idp: MockIdP, token_alg: str) -> None:
    rs = idp.key_for("RS256")
    jwks = idp.jwks()
    for k in jwks["keys"]:
        if k["kid"] == rs.kid:
            k["alg"] = "PS512"
    idp.serve_jwks(jwks)
    bridge = fresh()
    token = signed(hdr(rs, alg=token_alg), base_claims(idp), rs, alg=token_alg)
    expect_reject(lambda: bridge.verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    ps512 = signed(hdr(rs, alg="PS512"), base_claims(idp), rs, alg="PS512")
    assert bridge.verify(ps512).algorithm == "PS512"  # control: the JWK's own alg works


# -- ALG-14..15: RSA encodings -----------------------------------------------------------------

_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _rsa_raw_sign(key: rsa.RSAPrivateKey, digest_info: bytes, *, ps_byte: int = 0xFF) -> bytes:
    """Textbook RSA over a hand-built PKCS#1 v1.5 block (to forge legacy encodings)."""
    k = key.key_size // 8
    em = b"\x00\x01" + bytes([ps_byte]) * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    priv = key.private_numbers()
    n = priv.public_numbers.n
    return pow(int.from_bytes(em, "big"), priv.d, n).to_bytes(k, "big")


def test_alg_14_malformed_pkcs1_signatures(fresh: Fresh, idp: MockIdP) -> None:
    rs = idp.key_for("RS256")
    key = rs.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    n = key.public_key().public_numbers().n
    signing_input = f"{b64u(jdump(hdr(rs)))}.{b64u(jdump(base_claims(idp)))}"
    digest = hashlib.sha256(signing_input.encode()).digest()
    bridge = fresh()
    good = _rsa_raw_sign(key, _SHA256_PREFIX + digest)
    assert bridge.verify(signing_input + "." + b64u(good)).subject == "u-1"  # control
    missing_null = bytes.fromhex("302f300b0609608648016503040201") + b"\x04\x20" + digest
    ber_long_length = b"\x30\x81\x31" + _SHA256_PREFIX[2:] + digest
    forged = [
        _rsa_raw_sign(key, missing_null),  # Wycheproof "acceptable" MissingNull: strict reject
        _rsa_raw_sign(key, ber_long_length),  # BER long-form length
        _rsa_raw_sign(key, _SHA256_PREFIX + digest, ps_byte=0xFE),  # garbage in the padding
        _rsa_raw_sign(key, _SHA256_PREFIX + digest + b"\x00"),  # trailing garbage in DigestInfo
        bytes(256),  # 0
        (1).to_bytes(256, "big"),
        (n - 1).to_bytes(256, "big"),
        n.to_bytes(256, "big"),
        (n + 1).to_bytes(256, "big"),
        good[1:],  # shorter than the modulus
        b"\x00" + good,  # longer than the modulus
    ]
    for sig in forged:
        token = signing_input + "." + b64u(sig)
        expect_reject(lambda t=token: bridge.verify(t), BadSignature, "bad_signature")


def test_alg_14_leading_zero_dropped_from_a_valid_signature(fresh: Fresh, idp: MockIdP) -> None:
    """A genuine signature whose integer has a leading zero byte, sent 255 bytes long: the
    same integer, but not the modulus length RFC 7518 §3.3 requires."""
    rs = idp.key_for("RS256")
    bridge = fresh()
    for i in range(5000):
        signing_input = f"{b64u(jdump(hdr(rs)))}.{b64u(jdump(base_claims(idp, jti=str(i))))}"
        sig = rs.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
        if sig[0] == 0:
            break
    else:  # pragma: no cover - probability ~ e^-19
        pytest.fail("no signature with a leading zero byte found")
    assert bridge.verify(signing_input + "." + b64u(sig)).subject == "u-1"
    expect_reject(lambda: bridge.verify(signing_input + "." + b64u(sig[1:])), BadSignature, "bad_signature")


def test_alg_15_wrong_rsassa_pss_parameters(fresh: Fresh, idp: MockIdP) -> None:
    ps = idp.key_for("PS256")
    key = ps.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = f"{b64u(jdump(hdr(ps)))}.{b64u(jdump(base_claims(idp)))}".encode()
    bridge = fresh()
    right = key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert bridge.verify(signing_input.decode() + "." + b64u(right)).algorithm == "PS256"  # control
    wrong = [
        key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 0), hashes.SHA256()),
        key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 64), hashes.SHA256()),
        key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA1()), 32), hashes.SHA256()),
        key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 48), hashes.SHA384()),
        key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()),
    ]
    for sig in wrong:
        token = signing_input.decode() + "." + b64u(sig)
        expect_reject(lambda t=token: bridge.verify(t), BadSignature, "bad_signature")


# -- ALG-16 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alg", ["RS1", "HS1", "ES256K", "RSA-OAEP", "dir", "A128KW", "ES521", "PS256 ", "rs256"]
)
def test_alg_16_unknown_or_misplaced_alg_strings(fresh: Fresh, net: Net, idp: MockIdP, alg: str) -> None:
    rs = idp.key_for("RS256")
    _disallowed_no_io(fresh(), net, signed(hdr(rs, alg=alg), base_claims(idp), rs, alg="RS256"))


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_alg_16_eddsa_when_not_enabled(fresh: Fresh, net: Net, idp: MockIdP, alg: str) -> None:
    ed = idp.key_for("EdDSA")
    token = signed(hdr(ed, alg=alg), base_claims(idp), ed, alg="EdDSA")
    _disallowed_no_io(fresh(algorithms=["RS256", "ES256"]), net, token)
    assert fresh().verify(token).algorithm == alg  # control: enabled by default


def test_alg_16_huge_alg_string_is_not_echoed(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    rs = idp.key_for("RS256")
    marker = "ATTACKER-ALG-" + "Z" * 2900
    err = expect_reject(
        lambda: fresh().verify(signed(hdr(rs, alg=marker), base_claims(idp), rs, alg="RS256")),
        DisallowedAlgorithm,
        "disallowed_algorithm",
    )
    assert "ATTACKER" not in str(err) and len(str(err)) < 200
    assert net.requests == []
    one_mb = raw_token({"alg": "X" * 1024 * 1024}, base_claims(idp))
    expect_reject(lambda: fresh().verify(one_mb), MalformedToken, "token_too_large")
