"""JWS algorithms (RFC 7518 §3, RFC 8037, RFC 9864): the one algorithm table, and
the strict signature check of each algorithm over ``cryptography``.

Owns: :data:`SPECS` (also exported as ``ALGORITHMS``), one frozen
:class:`AlgorithmSpec` per ``alg`` name: key type, curve, hash, padding,
minimum key size and the size of the key's coordinates. Everything else that
needs these facts derives them from here: the profiles' default allow-list,
JWK import (:func:`algorithms_fitting`, the one "does this algorithm fit this
key" decision, and the coordinate sizes), and the testing toolkit's key
generation and signing. Also the strict check for each algorithm (fixed-length
raw R||S for ECDSA, modulus-length signatures for RSA, salt length equal to the
hash length for PSS); the primitives always come from ``cryptography``.

Must not: parse tokens or JWKs, choose keys, or know about issuers. HMAC and
``none`` are deliberately absent: an issuer that publishes a JWKS is trusted
for asymmetric signatures only (RFC 8725 §3.1-3.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALGORITHMS",
    "ASYMMETRIC_ALGORITHMS",
    "NEVER_ALLOWED",
    "SPECS",
    "AlgorithmSpec",
    "PublicKey",
    "algorithms_fitting",
    "make_verifier",
]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
Verifier = Callable[[bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """What one JWS algorithm needs from a key, and how it signs.

    ``hash`` is the digest (None for EdDSA, which hashes internally);
    ``padding`` the RSA signature scheme (None for EC and OKP); ``min_key_bits``
    the smallest key accepted (the RSA modulus; for EC and OKP the curve's
    size, fixed by the curve); ``coord_size`` the octet length of each public
    coordinate (EC ``x``/``y``, OKP ``x``; None for RSA). An ECDSA signature
    is two coordinates long, an Ed25519 one 64 octets.
    """

    name: str
    kty: Literal["RSA", "EC", "OKP"]
    crv: str | None  # the curve for EC/OKP, None for RSA
    hash: type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512] | None
    padding: Literal["PKCS1v15", "PSS"] | None
    min_key_bits: int
    coord_size: int | None

    def fits(self, kty: object, crv: object) -> bool:
        """True when a key of type ``kty`` on curve ``crv`` can sign with this algorithm."""
        return kty == self.kty and crv == self.crv


_MIN_RSA = 2048  # RFC 7518 §3.3 requires 2048 bits or more, for PKCS#1 v1.5 and PSS alike
_S256, _S384, _S512 = hashes.SHA256, hashes.SHA384, hashes.SHA512

SPECS: Mapping[str, AlgorithmSpec] = MappingProxyType({
    spec.name: spec
    for spec in (
        AlgorithmSpec("RS256", "RSA", None, _S256, "PKCS1v15", _MIN_RSA, None),
        AlgorithmSpec("RS384", "RSA", None, _S384, "PKCS1v15", _MIN_RSA, None),
        AlgorithmSpec("RS512", "RSA", None, _S512, "PKCS1v15", _MIN_RSA, None),
        AlgorithmSpec("PS256", "RSA", None, _S256, "PSS", _MIN_RSA, None),
        AlgorithmSpec("PS384", "RSA", None, _S384, "PSS", _MIN_RSA, None),
        AlgorithmSpec("PS512", "RSA", None, _S512, "PSS", _MIN_RSA, None),
        AlgorithmSpec("ES256", "EC", "P-256", _S256, None, 256, 32),
        AlgorithmSpec("ES384", "EC", "P-384", _S384, None, 384, 48),
        AlgorithmSpec("ES512", "EC", "P-521", _S512, None, 521, 66),
        AlgorithmSpec("EdDSA", "OKP", "Ed25519", None, None, 256, 32),  # RFC 8037; only Ed25519
        AlgorithmSpec("Ed25519", "OKP", "Ed25519", None, None, 256, 32),  # RFC 9864 fully-specified name
    )
})  # fmt: skip
#: The public name of the table (``federation.spi.ALGORITHMS``).
ALGORITHMS = SPECS
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(SPECS)
# Names that can never be allowed for an issuer trusted through a JWKS.
NEVER_ALLOWED: frozenset[str] = frozenset({"none", "HS256", "HS384", "HS512"})


def algorithms_fitting(kty: object, crv: object, alg: object = None) -> frozenset[str]:
    """The algorithm names a key of ``kty``/``crv`` may verify: the one fit decision.

    With ``alg`` (the key's own ``alg`` member) the answer narrows to that
    algorithm, and to every other name of the same algorithm (``EdDSA`` and
    ``Ed25519``). Raises :class:`ValueError` when ``alg`` is not a table entry
    fitting the key (``none``, HMAC, encryption algorithms, another key type).
    """
    fitting = frozenset(name for name, spec in SPECS.items() if spec.fits(kty, crv))
    if alg is None:
        return fitting
    spec = SPECS.get(alg) if isinstance(alg, str) else None
    if spec is None or alg not in fitting:
        raise ValueError("key 'alg' is not a signature algorithm for this key type")
    # Two names for one algorithm: the same entry apart from its name.
    return frozenset(name for name in fitting if _same_algorithm(SPECS[name], spec))


def _same_algorithm(a: AlgorithmSpec, b: AlgorithmSpec) -> bool:
    return (a.kty, a.crv, a.hash, a.padding) == (b.kty, b.crv, b.hash, b.padding)


def make_verifier(alg: str, key: PublicKey) -> Verifier:
    """Return ``verify(signing_input, signature) -> bool`` for ``alg`` with ``key``.

    The key must already be known to fit the algorithm (:func:`algorithms_fitting`);
    the returned callable never raises for a bad signature, it returns False.
    Padding and hash objects are built once here, not on every call.
    """
    spec = SPECS[alg]
    if spec.kty == "RSA":
        assert isinstance(key, rsa.RSAPublicKey) and spec.hash is not None
        hash_alg = spec.hash()
        pad: padding.AsymmetricPadding
        if spec.padding == "PKCS1v15":
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
    if spec.kty == "EC":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert spec.hash is not None and spec.coord_size is not None
        size = spec.coord_size
        ecdsa = ec.ECDSA(spec.hash())
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
    assert spec.kty == "OKP" and isinstance(key, ed25519.Ed25519PublicKey)
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
