"""JWK and JWK Set import for verification (RFC 7517, RFC 7518 §6, RFC 8037).

Owns: turning a fetched, untrusted JWK Set into the verification keys it is
safe to use, entry by entry. An unusable entry is skipped with a reason (never
failing the whole set): encryption keys, symmetric or unknown key types,
private key material, RSA moduli below 2048 or above 8192 bits, weak
exponents, EC points off their curve, non-minimal integers, ``x5c``
certificates that do not match the key, and ``kid`` values claimed by two
different keys. Key parsing is delegated to joserfc; the public key objects
are ``cryptography``'s.

Must not: fetch anything, know about issuers or tokens beyond ``alg``/``kid``
selection, or keep state between calls.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ._rfc7515 import b64url_decode
from ._rfc7518 import SPECS, PublicKey, Verifier, make_verifier
from .errors import DisallowedAlgorithm, MalformedToken, UnknownKey

__all__ = [
    "KeySet",
    "TooManyKeys",
    "UnusableKey",
    "VerificationKey",
    "import_jwk",
    "import_jwks",
    "import_pem_map",
]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_EC_COORD = {"P-256": 32, "P-384": 48, "P-521": 66}
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192  # larger moduli are a CPU denial of service, not security


class UnusableKey(ValueError):
    """A JWK entry that cannot be used to verify signatures (message says why)."""


class TooManyKeys(UnusableKey):
    """A key set holds more entries than the configured limit."""


@dataclass(eq=False, slots=True)
class VerificationKey:
    """A public key that may verify JWS signatures with ``algorithms``.

    ``issuer`` is the key's own ``issuer`` member when the JWKS carries one
    (Entra ID does); provider profiles may enforce it.
    """

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    algorithms: frozenset[str]
    public_key: PublicKey
    issuer: str | None = None
    _verifiers: dict[str, Verifier] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def verifier(self, alg: str) -> Verifier:
        """The signature check for ``alg`` (built once per key and algorithm)."""
        fn = self._verifiers.get(alg)
        if fn is None:
            if alg not in self.algorithms:
                raise DisallowedAlgorithm("the token's algorithm does not fit the selected key")
            with self._lock:
                fn = self._verifiers.setdefault(alg, make_verifier(alg, self.public_key))
        return fn

    def same_key_as(self, other: VerificationKey) -> bool:
        """True when both wrap the same public key material."""
        return _public_fingerprint(self.public_key) == _public_fingerprint(other.public_key)


def _public_fingerprint(key: PublicKey) -> tuple[Any, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return ("RSA", nums.n, nums.e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        pn = key.public_numbers()
        return ("EC", key.curve.name, pn.x, pn.y)
    return ("OKP", key.public_bytes_raw())


def _uint(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise UnusableKey(f"member '{name}' is missing or not a string")
    try:
        raw = b64url_decode(value)
    except MalformedToken:
        raise UnusableKey(f"member '{name}' is not base64url") from None
    return raw


def _check_use(jwk: Mapping[str, Any]) -> None:
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise UnusableKey("key is not for signatures (use)")
    ops = jwk.get("key_ops")
    if ops is not None:
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise UnusableKey("key_ops is not an array of strings")
        if "verify" not in ops:
            raise UnusableKey("key is not for verification (key_ops)")


def _algorithms_for(kty: str, crv: str | None, alg: object) -> frozenset[str]:
    fitting = frozenset(name for name, spec in SPECS.items() if spec.kty == kty and spec.crv == crv)
    if alg is None:
        return fitting
    if not isinstance(alg, str) or alg not in fitting:
        # 'none', HMAC, encryption algorithms, or one that does not fit the key type.
        raise UnusableKey("key 'alg' is not a signature algorithm for this key type")
    if alg in ("EdDSA", "Ed25519"):
        return frozenset({"EdDSA", "Ed25519"})  # two names for one algorithm
    return frozenset({alg})


def _import_rsa(jwk: Mapping[str, Any]) -> PublicKey:
    n_raw, e_raw = _uint(jwk, "n"), _uint(jwk, "e")
    if n_raw[0] == 0 or e_raw[0] == 0:
        raise UnusableKey("RSA integer is not minimally encoded")
    n = int.from_bytes(n_raw, "big")
    e = int.from_bytes(e_raw, "big")
    if not _MIN_RSA_BITS <= n.bit_length() <= _MAX_RSA_BITS:
        raise UnusableKey("RSA modulus size is outside 2048..8192 bits")
    if n % 2 == 0 or e % 2 == 0 or e < 65537 or e >= n:
        raise UnusableKey("RSA exponent or modulus is weak")
    key = RSAKey.import_key({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}).public_key
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _import_ec(jwk: Mapping[str, Any], crv: str) -> PublicKey:
    size = _EC_COORD[crv]
    if len(_uint(jwk, "x")) != size or len(_uint(jwk, "y")) != size:
        raise UnusableKey("EC coordinate has the wrong length for its curve")
    # joserfc builds the key through cryptography, which refuses points off the curve.
    key = ECKey.import_key({"kty": "EC", "crv": crv, "x": jwk["x"], "y": jwk["y"]}).public_key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _import_okp(jwk: Mapping[str, Any], crv: str) -> PublicKey:
    if len(_uint(jwk, "x")) != 32:
        raise UnusableKey("Ed25519 public key must be 32 bytes")
    key = OKPKey.import_key({"kty": "OKP", "crv": crv, "x": jwk["x"]}).public_key
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key


def _check_x5c(jwk: Mapping[str, Any], key: PublicKey) -> None:
    """RFC 7517 §4.7: the first certificate's key MUST match the JWK."""
    chain = jwk.get("x5c")
    if chain is None:
        return
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise UnusableKey("x5c is not a non-empty array of strings")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        cert_key = cert.public_key()
    except (ValueError, binascii.Error, TypeError):
        raise UnusableKey("x5c certificate does not parse") from None
    if not isinstance(cert_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise UnusableKey("x5c certificate key type is not supported")
    if _public_fingerprint(cert_key) != _public_fingerprint(key):
        raise UnusableKey("x5c certificate does not match the key")


def import_jwk(jwk: object) -> VerificationKey:
    """Import one JWK entry for verification, or raise :class:`UnusableKey`."""
    if not isinstance(jwk, dict):
        raise UnusableKey("entry is not a JSON object")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        raise UnusableKey("entry carries private or symmetric key material")
    _check_use(jwk)
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise UnusableKey("kid is not a non-empty string")
    kty = jwk.get("kty")
    crv = jwk.get("crv")
    try:
        if kty == "RSA":
            crv = None
            key = _import_rsa(jwk)
        elif kty == "EC" and crv in _EC_COORD:
            key = _import_ec(jwk, crv)
        elif kty == "OKP" and crv == "Ed25519":
            key = _import_okp(jwk, crv)
        else:
            raise UnusableKey("key type or curve is not supported for signatures")
    except UnusableKey:
        raise
    except Exception:  # joserfc or cryptography refused the numbers
        raise UnusableKey("key material is invalid") from None
    algorithms = _algorithms_for(kty, crv, jwk.get("alg"))
    _check_x5c(jwk, key)
    issuer = jwk.get("issuer")
    return VerificationKey(
        kid=kid,
        kty=kty,
        crv=crv,
        alg=jwk.get("alg"),
        algorithms=algorithms,
        public_key=key,
        issuer=issuer if isinstance(issuer, str) else None,
    )


class KeySet:
    """An immutable set of verification keys with ``kid`` and algorithm lookup."""

    __slots__ = ("_by_kid", "keys")

    def __init__(self, keys: Iterable[VerificationKey]) -> None:
        self.keys: tuple[VerificationKey, ...] = tuple(keys)
        self._by_kid = {k.kid: k for k in self.keys if k.kid is not None}

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def kids(self) -> frozenset[str]:
        """The key ids in the set."""
        return frozenset(self._by_kid)

    def find(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for ``kid`` (or, without one, the single key fitting ``alg``).

        Returns None when no key matches, so the caller may refetch. Raises
        :class:`DisallowedAlgorithm` when the named key does not fit ``alg``,
        and :class:`UnknownKey` when a kid-less token fits several keys.
        """
        if kid is not None:
            key = self._by_kid.get(kid)
            if key is not None and alg not in key.algorithms:
                raise DisallowedAlgorithm("the token's algorithm does not fit the selected key")
            return key
        candidates = [k for k in self.keys if alg in k.algorithms]
        if len(candidates) > 1:
            raise UnknownKey("the token has no 'kid' and several keys fit its algorithm")
        return candidates[0] if candidates else None


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _pem_entry_as_jwk(kid: str, pem: object) -> dict[str, Any]:
    """A ``{kid: PEM certificate}`` entry as a public JWK, so the same hygiene applies."""
    if not isinstance(pem, str):
        raise UnusableKey("certificate is not a string")
    try:
        public = x509.load_pem_x509_certificate(pem.encode("ascii")).public_key()
    except (ValueError, UnicodeEncodeError):
        raise UnusableKey("certificate does not parse") from None
    if isinstance(public, rsa.RSAPublicKey):
        nums = public.public_numbers()
        return {"kty": "RSA", "kid": kid, "n": _b64uint(nums.n), "e": _b64uint(nums.e)}
    raise UnusableKey("certificate key type is not supported")


def import_pem_map(document: object, *, max_keys: int) -> tuple[KeySet, list[str]]:
    """Import Google's ``{kid: PEM certificate}`` map (used by Firebase) with JWK Set hygiene."""
    if not isinstance(document, dict):
        raise UnusableKey("document is not a certificate map")
    entries: list[object] = []
    warnings: list[str] = []
    for index, (kid, pem) in enumerate(document.items()):
        try:
            entries.append(_pem_entry_as_jwk(kid, pem))
        except UnusableKey as exc:
            warnings.append(f"key #{index} skipped: {exc}")
    keyset, more = import_jwks({"keys": entries}, max_keys=max_keys)
    return keyset, warnings + more


def import_jwks(document: object, *, max_keys: int) -> tuple[KeySet, list[str]]:
    """Import a JWK Set document: the usable keys, and one warning per skipped entry.

    Raises :class:`UnusableKey` when the document itself is not a JWK Set or
    holds more than ``max_keys`` entries. An empty result is the caller's to
    judge (the key cache treats it as a failed fetch).
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UnusableKey("document is not a JWK Set (no 'keys' array)")
    entries = document["keys"]
    if len(entries) > max_keys:
        raise TooManyKeys("JWK Set holds more keys than the configured limit")
    warnings: list[str] = []
    usable: list[VerificationKey] = []
    for index, entry in enumerate(entries):
        try:
            usable.append(import_jwk(entry))
        except UnusableKey as exc:
            warnings.append(f"key #{index} skipped: {exc}")
    # RFC 7517 §4.5: a kid names one key. Two different keys under one kid are
    # ambiguous, so neither is used; an exact repeat is harmless and folded.
    by_kid: dict[str, list[VerificationKey]] = {}
    for key in usable:
        if key.kid is not None:
            by_kid.setdefault(key.kid, []).append(key)
    result: list[VerificationKey] = []
    seen: set[str] = set()
    for key in usable:
        if key.kid is None:
            result.append(key)
            continue
        if key.kid in seen:
            continue
        seen.add(key.kid)
        group = by_kid[key.kid]
        if all(k.same_key_as(group[0]) and k.algorithms == group[0].algorithms for k in group[1:]):
            result.append(key)
        else:
            warnings.append(f"{len(group)} different keys share one kid; none of them is used")
    return KeySet(result), warnings
