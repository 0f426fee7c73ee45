"""JWS algorithms (RFC 7518 §3, RFC 8037, RFC 9864) mapped onto ``cryptography``.

Owns: which ``alg`` names exist, which key type and curve each needs, and the
strict signature check for each (fixed-length raw R||S for ECDSA, modulus-length
signatures for RSA, salt length equal to the hash length for PSS). The
primitives themselves always come from ``cryptography``.

Must not: parse tokens or JWKs, choose keys, or know about issuers. HMAC and
``none`` are deliberately absent: an issuer that publishes a JWKS is trusted
for asymmetric signatures only (RFC 8725 §3.1-3.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "NEVER_ALLOWED",
    "SPECS",
    "AlgorithmSpec",
    "PublicKey",
    "make_verifier",
]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
Verifier = Callable[[bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """What an algorithm needs from a key."""

    name: str
    kty: str  # "RSA", "EC" or "OKP"
    crv: str | None  # the curve for EC/OKP, None for RSA


SPECS: dict[str, AlgorithmSpec] = {
    spec.name: spec
    for spec in (
        AlgorithmSpec("RS256", "RSA", None),
        AlgorithmSpec("RS384", "RSA", None),
        AlgorithmSpec("RS512", "RSA", None),
        AlgorithmSpec("PS256", "RSA", None),
        AlgorithmSpec("PS384", "RSA", None),
        AlgorithmSpec("PS512", "RSA", None),
        AlgorithmSpec("ES256", "EC", "P-256"),
        AlgorithmSpec("ES384", "EC", "P-384"),
        AlgorithmSpec("ES512", "EC", "P-521"),
        AlgorithmSpec("EdDSA", "OKP", "Ed25519"),  # RFC 8037; only Ed25519 is supported
        AlgorithmSpec("Ed25519", "OKP", "Ed25519"),  # RFC 9864 fully-specified name
    )
}
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(SPECS)
# Names that can never be allowed for an issuer trusted through a JWKS.
NEVER_ALLOWED: frozenset[str] = frozenset({"none", "HS256", "HS384", "HS512"})

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}


def make_verifier(alg: str, key: PublicKey) -> Verifier:
    """Return ``verify(signing_input, signature) -> bool`` for ``alg`` with ``key``.

    The key must already be known to fit the algorithm (see :data:`SPECS`);
    the returned callable never raises for a bad signature, it returns False.
    Padding and hash objects are built once here, not on every call.
    """
    family = alg[:2]
    if family in ("RS", "PS"):
        assert isinstance(key, rsa.RSAPublicKey)
        hash_alg = _HASHES[alg[2:]]()
        pad: padding.AsymmetricPadding
        if family == "RS":
            pad = padding.PKCS1v15()
        else:
            # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
            pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        sig_len = (key.key_size + 7) // 8
        rsa_verify = key.verify

        def verify_rsa(data: bytes, signature: bytes) -> bool:
            if len(signature) != sig_len:
                return False
            try:
                rsa_verify(signature, data, pad, hash_alg)
            except InvalidSignature:
                return False
            return True

        return verify_rsa
    if family == "ES":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        size = _EC_SIZES[SPECS[alg].crv or ""]
        ecdsa = ec.ECDSA(_HASHES[alg[2:]]())
        ec_verify = key.verify

        def verify_ec(data: bytes, signature: bytes) -> bool:
            # RFC 7518 §3.4: exactly R||S, each the full coordinate size; DER is refused.
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            if r == 0 or s == 0:
                return False
            try:
                ec_verify(encode_dss_signature(r, s), data, ecdsa)
            except InvalidSignature:
                return False
            return True

        return verify_ec
    assert alg in ("EdDSA", "Ed25519") and isinstance(key, ed25519.Ed25519PublicKey)
    ed_verify = key.verify

    def verify_ed(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            ed_verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify_ed
