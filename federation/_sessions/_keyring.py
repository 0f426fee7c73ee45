"""The session key ring: the app's own signing keys for its session tokens.

Owns: loading PEM private keys (a file or an environment variable), checking
that each fits the configured algorithm (the algorithm table of
``federation.spi``), naming each by its RFC 7638 thumbprint (``kid``),
signing with the first key, and publishing every key's public half as a JWK
Set (RFC 7517) that the strict verifier imports like any issuer's keys.

HS256 with a shared secret (:class:`SessionSecret`) has the same face
minus publication: a symmetric secret is never published, and it verifies
only the app's own tokens (external issuers are never HS256).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .._files import MAX_SECRET_FILE_BYTES, env_secret, read_limited
from .._rfc7517 import EC_CURVES
from ..errors import ConfigError
from ..spi import ALGORITHMS

__all__ = [
    "SESSION_ALGORITHMS",
    "SessionKey",
    "SessionKeyRing",
    "SessionSecret",
    "generate_private_key_pem",
]

#: The algorithms a session key ring signs with (asymmetric: the public keys can be published).
SESSION_ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_JoseKey = RSAKey | ECKey | OKPKey
_CURVES = {curve().name: crv for crv, curve in EC_CURVES.items()}  # secp256r1 -> P-256, ...


@dataclass(frozen=True, slots=True)
class SessionKey:
    """One private key of the ring, with its ``kid`` (the RFC 7638 thumbprint) and public JWK."""

    kid: str
    private: _PrivateKey
    public_jwk: Mapping[str, Any]


class SessionKeyRing:
    """The app's session keys: the first signs, every one verifies (rotation).

    Build with :meth:`from_pems` (PEM bytes) or :meth:`load` (``file``/``env``
    entries as in the ``sessions.keys`` configuration).
    """

    def __init__(self, algorithm: str, keys: Sequence[SessionKey]) -> None:
        if not keys:
            raise ConfigError("sessions.keys needs at least one private key", field="sessions.keys")
        kids = [k.kid for k in keys]
        if len(set(kids)) != len(kids):
            raise ConfigError("sessions.keys lists the same key twice", field="sessions.keys")
        self.algorithm = algorithm
        self.keys = tuple(keys)
        self._spec = ALGORITHMS[algorithm]

    @property
    def signing_key(self) -> SessionKey:
        """The key new tokens are signed with (the first listed)."""
        return self.keys[0]

    def derive_secret(self, purpose: str) -> bytes:
        """32 bytes for ``purpose`` derived from the signing key (HKDF-SHA256, RFC 5869):
        a secret of the app's that no published key reveals; it changes with the signing key."""
        der = self.signing_key.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return _hkdf(der, purpose)

    @classmethod
    def from_pems(cls, algorithm: str, pems: Sequence[bytes]) -> SessionKeyRing:
        """A ring from PEM private keys (errors name each as ``sessions.keys[i]``)."""
        _check_algorithm(algorithm)
        keys = [_session_key(algorithm, pem, f"sessions.keys[{index}]") for index, pem in enumerate(pems)]
        return cls(algorithm, keys)

    @classmethod
    def load(
        cls,
        algorithm: str,
        entries: Sequence[Mapping[str, str]],
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> SessionKeyRing:
        """A ring from ``{"file": path}`` (relative to ``base_dir``) or ``{"env": NAME}`` entries."""
        env = os.environ if environ is None else environ
        pems: list[bytes] = []
        for index, entry in enumerate(entries):
            field = f"sessions.keys[{index}]"
            if set(entry) == {"file"}:
                path = Path(entry["file"])
                if base_dir is not None and not path.is_absolute():
                    path = base_dir / path
                try:
                    pems.append(read_limited(path, MAX_SECRET_FILE_BYTES))
                except OSError as exc:
                    raise ConfigError(
                        f"{field}: cannot read the key file {str(path)!r} "
                        f"({exc.strerror or type(exc).__name__})",
                        field=field,
                    ) from None
            elif set(entry) == {"env"}:
                pems.append(env_secret(env, entry["env"], field))
            else:
                raise ConfigError(f"{field}: give exactly one of 'file' or 'env'", field=field)
        return cls.from_pems(algorithm, pems)

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature of ``signing_input`` with the signing key (RFC 7518 §3)."""
        spec, private = self._spec, self.signing_key.private
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return private.sign(signing_input)
        assert spec.hash is not None
        if isinstance(private, ec.EllipticCurvePrivateKey):
            assert spec.coord_size is not None
            r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(spec.hash())))
            return r.to_bytes(spec.coord_size, "big") + s.to_bytes(spec.coord_size, "big")
        if spec.padding == "PSS":  # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash
            scheme: padding.AsymmetricPadding = padding.PSS(
                mgf=padding.MGF1(spec.hash()), salt_length=spec.hash.digest_size
            )
        else:
            scheme = padding.PKCS1v15()
        return private.sign(signing_input, scheme, spec.hash())

    def jwks(self) -> dict[str, Any]:
        """Every key's public half, as a JWK Set (for ``/.well-known/jwks.json``)."""
        return {"keys": [dict(k.public_jwk) for k in self.keys]}


#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class _SecretId:
    kid: str


class SessionSecret:
    """HS256 session signing with one shared secret (its UTF-8 bytes, at least 32).

    The ``kid`` is a truncated SHA-256 of the secret (names it without revealing
    it); :meth:`jwks` is empty: a secret is never published.
    """

    algorithm = "HS256"

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"sessions.secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 section 3.2)",
                field="sessions.secret",
            )
        self._secret = secret
        digest = hashlib.sha256(b"federation-session-secret:" + secret).digest()[:12]
        self.signing_key = _SecretId(base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
        self.keys = (self.signing_key,)

    def derive_secret(self, purpose: str) -> bytes:
        """32 bytes for ``purpose`` derived from the secret (HKDF-SHA256, RFC 5869)."""
        return _hkdf(self._secret, purpose)

    @classmethod
    def load(
        cls,
        entry: Mapping[str, str],
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> SessionSecret:
        """The secret of ``{"env": NAME}`` or ``{"file": path}`` (trailing newline dropped)."""
        env = os.environ if environ is None else environ
        if set(entry) == {"env"}:
            return cls(env_secret(env, entry["env"], "sessions.secret"))
        if set(entry) == {"file"}:
            path = Path(entry["file"])
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                return cls(read_limited(path, MAX_SECRET_FILE_BYTES).rstrip(b"\r\n"))
            except OSError as exc:
                raise ConfigError(
                    f"sessions.secret: cannot read {str(path)!r} ({exc.strerror or type(exc).__name__})",
                    field="sessions.secret",
                ) from None
        raise ConfigError("sessions.secret: give exactly one of 'env' or 'file'", field="sessions.secret")

    def _mac(self) -> hmac.HMAC:
        return hmac.HMAC(self._secret, hashes.SHA256())

    def sign(self, signing_input: bytes) -> bytes:
        """The HMAC-SHA256 of ``signing_input``."""
        mac = self._mac()
        mac.update(signing_input)
        return mac.finalize()

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this secret's MAC (compared in constant time)."""
        mac = self._mac()
        mac.update(signing_input)
        try:
            mac.verify(signature)
        except InvalidSignature:
            return False
        return True

    def jwks(self) -> dict[str, Any]:
        """No public keys: a shared secret is never published."""
        return {"keys": []}


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in SESSION_ALGORITHMS:
        raise ConfigError(
            f"sessions.algorithm must be one of {', '.join(SESSION_ALGORITHMS)} (HS256 only with 'secret')",
            field="sessions.algorithm",
        )


def _session_key(algorithm: str, pem: bytes, field: str) -> SessionKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):  # not a PEM private key, or an encrypted one
        raise ConfigError(
            f"{field}: not an unencrypted PEM private key (a public key or certificate cannot sign)",
            field=field,
        ) from None
    except UnsupportedAlgorithm:
        raise ConfigError(f"{field}: an unsupported kind of private key", field=field) from None
    if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise ConfigError(f"{field}: an unsupported kind of private key", field=field)
    spec = ALGORITHMS[algorithm]
    if isinstance(private, rsa.RSAPrivateKey):
        kty, crv = "RSA", None
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        kty, crv = "EC", _CURVES.get(private.curve.name)
    else:
        kty, crv = "OKP", "Ed25519"
    if not spec.fits(kty, crv):
        kind = {"RSA": "an RSA key", "OKP": "an Ed25519 key"}.get(kty) or f"an EC key on {crv or 'a curve'}"
        fitting = [a for a in SESSION_ALGORITHMS if ALGORITHMS[a].fits(kty, crv)]
        use = f"; it signs {' or '.join(fitting)} (set sessions.algorithm)" if fitting else ""
        raise ConfigError(f"{field}: this key does not fit {algorithm}: it is {kind}{use}", field=field)
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size < spec.min_key_bits:
        raise ConfigError(
            f"{field}: an RSA key of {private.key_size} bits; {algorithm} needs {spec.min_key_bits} or more",
            field=field,
        )
    jose = _jose(private)
    kid = jose.thumbprint()
    public = dict(jose.as_dict(private=False))
    public.update(kid=kid, alg=algorithm, use="sig")
    return SessionKey(kid, private, public)


def _jose(private: _PrivateKey) -> _JoseKey:
    jose: _JoseKey
    if isinstance(private, rsa.RSAPrivateKey):
        jose = RSAKey.import_key(private)
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        jose = ECKey.import_key(private)
    else:
        jose = OKPKey.import_key(private)
    return jose


def generate_private_key_pem(algorithm: str) -> bytes:
    """A new private key for ``algorithm``, as unencrypted PKCS#8 PEM (RSA: 3072 bits)."""
    _check_algorithm(algorithm)
    private: _PrivateKey
    if algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:  # RS256, PS256: 3072 bits, NIST's size for use beyond 2030 (SP 800-57 part 1)
        private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _hkdf(material: bytes, purpose: str) -> bytes:
    info = b"federation-bridge derived secret: " + purpose.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)
