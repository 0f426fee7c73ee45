"""Signing keys for the mock identity provider.

Owns: generating test key pairs (RSA 2048, EC P-256/P-384/P-521, Ed25519)
through joserfc, exporting their public JWKs, and signing a JWS signing input
with ``cryptography`` (raw R||S for ECDSA, as RFC 7518 §3.4 requires).

Must not: be used for anything but tests: private keys live in memory only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey

__all__ = ["ALG_KEY_TYPES", "SigningKey", "generate_signing_key", "sign"]

#: The key each algorithm is generated with.
ALG_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_SIZE = {"P-256": 32, "P-384": 48, "P-521": 66}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key pair of the mock issuer: its kid, algorithm, private key and public JWK."""

    kid: str
    alg: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]


def generate_signing_key(alg: str = "RS256", *, kid: str | None = None, rsa_bits: int = 2048) -> SigningKey:
    """A fresh key pair for ``alg`` with a random kid unless one is given."""
    if alg not in ALG_KEY_TYPES:
        raise ValueError(f"unsupported algorithm {alg!r}; choose one of {sorted(ALG_KEY_TYPES)}")
    kty, crv = ALG_KEY_TYPES[alg]
    kid = kid or secrets.token_urlsafe(8)
    params = cast(Any, {"kid": kid, "alg": alg, "use": "sig"})
    key: RSAKey | ECKey | OKPKey
    if kty == "RSA":
        key = RSAKey.generate_key(rsa_bits, parameters=params)
    elif kty == "EC":
        key = ECKey.generate_key(cast(Any, crv), parameters=params)
    else:
        key = OKPKey.generate_key("Ed25519", parameters=params)
    private = key.private_key
    assert isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey))
    return SigningKey(kid, alg, private, dict(key.as_dict(private=False)))


def sign(key: PrivateKey, alg: str, signing_input: bytes) -> bytes:
    """Sign like an identity provider would (the primitives are cryptography's)."""
    if isinstance(key, rsa.RSAPrivateKey):
        hash_alg = _HASHES[alg[2:]]()
        if alg.startswith("PS"):
            pad: padding.AsymmetricPadding = padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
        else:
            pad = padding.PKCS1v15()
        return key.sign(signing_input, pad, hash_alg)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
        r, s = decode_dss_signature(der)
        size = _EC_SIZE[{"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return key.sign(signing_input)
