"""Signing keys for the mock identity provider.

Owns: generating test key pairs for every algorithm of the engine's algorithm
table (``federation.spi.ALGORITHMS``: key type, curve and size come from
there; RSA 2048, EC P-256/P-384/P-521, Ed25519), exporting their public JWKs,
and signing a JWS signing input through joserfc's JWS algorithms, so that the
toolkit is an oracle independent of the verifier's own signature code. Only a
deliberately mismatched pair (an algorithm the key does not fit, for negative
tests) is signed by hand over ``cryptography``, because joserfc refuses it.

Must not: be used for anything but tests: private keys live in memory only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from federation.spi import ALGORITHMS

__all__ = ["ALG_KEY_TYPES", "SigningKey", "generate_signing_key", "sign"]

#: The key each algorithm is generated with, ``(kty, crv)``: a view of the algorithm table.
ALG_KEY_TYPES: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {name: (spec.kty, spec.crv) for name, spec in ALGORITHMS.items()}
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_JoseKey = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key pair of the mock issuer: its kid, algorithm, private key and public JWK."""

    kid: str
    alg: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]


def generate_signing_key(alg: str = "RS256", *, kid: str | None = None, rsa_bits: int = 2048) -> SigningKey:
    """A fresh key pair for ``alg`` with a random kid unless one is given.

    ``rsa_bits`` may go below the table's minimum on purpose (a weak key for
    negative tests); curves are fixed by the algorithm.
    """
    spec = ALGORITHMS.get(alg)
    if spec is None:
        raise ValueError(f"unsupported algorithm {alg!r}; choose one of {sorted(ALGORITHMS)}")
    kid = kid or secrets.token_urlsafe(8)
    params = cast(Any, {"kid": kid, "alg": alg, "use": "sig"})
    key: _JoseKey
    if spec.kty == "RSA":
        key = RSAKey.generate_key(rsa_bits, parameters=params)
    elif spec.kty == "EC":
        key = ECKey.generate_key(cast(Any, spec.crv), parameters=params)
    else:
        key = OKPKey.generate_key(cast(Any, spec.crv), parameters=params)
    private = key.private_key
    assert isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey))
    return SigningKey(kid, alg, private, dict(key.as_dict(private=False)))


def _jose_key(key: PrivateKey) -> _JoseKey:
    jose: _JoseKey
    if isinstance(key, rsa.RSAPrivateKey):
        jose = RSAKey.import_key(key)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jose = ECKey.import_key(key)
    else:
        jose = OKPKey.import_key(key)
    return jose


def sign(key: PrivateKey, alg: str, signing_input: bytes) -> bytes:
    """Sign ``signing_input`` with ``alg`` like an identity provider would.

    The exact signing input is signed (the caller chose the header bytes), so
    this uses joserfc's JWS algorithm objects rather than
    ``jws.serialize_compact``, which would re-serialise the header.
    """
    jose_key = _jose_key(key)
    spec = ALGORITHMS.get(alg)
    if spec is not None and spec.fits(jose_key.key_type, getattr(jose_key, "curve_name", None)):
        algorithm = JWSRegistry.algorithms[alg]
        algorithm.check_key(jose_key)
        return algorithm.sign(signing_input, jose_key)
    return _sign_mismatched(key, alg, signing_input)


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def _sign_mismatched(key: PrivateKey, alg: str, signing_input: bytes) -> bytes:
    """Hand-crafted signature for an ``alg`` the key does not fit (an RSA key under
    ``ES256``, a P-521 key under ``ES256``, ``HS256``...): the key's own scheme with the
    hash the name's suffix says. Negative tests need these; joserfc refuses to make them."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(signing_input)
    hash_alg = _HASHES[alg[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding
        if alg.startswith("PS"):
            pad = padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
        else:
            pad = padding.PKCS1v15()
        return key.sign(signing_input, pad, hash_alg)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hash_alg)))
    size = (key.curve.key_size + 7) // 8  # raw R||S at the key's own coordinate size
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")
