"""What a real issuer does beyond its tokens' claims, for a mock to copy.

Owns: :class:`ProviderTraits` (the shape of key ids, how many keys are published
and which signs what, where the authorization and token endpoints live, whether
the authorization response carries ``iss`` (RFC 9207), the ``Cache-Control`` of
the key set) and the key-id generators the shipped providers' shapes use. Each
provider's shape (``federation.providers.<name>.shape``) sets its own traits, so
that code which passes against the mock also works against the provider.

Must not: perform I/O.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ._mockidp import MockIdP

__all__ = ["ProviderTraits", "base64url_kid", "hex_kid", "standard_base64_kid"]

#: A kid made from random bytes, or Entra's: the certificate's SHA-1 thumbprint (``x5t``).
KidStyle = Callable[[], str] | Literal["x5t"] | None


def standard_base64_kid() -> str:
    """44 characters of standard base64 (``+``, ``/`` and ``=``), like a Cognito user pool's kids.

    Drawn until both ``+`` and ``/`` appear, so that code which puts a kid into a URL
    or a file name unescaped fails in every test, not in one run of four.
    """
    while True:
        kid = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        if "+" in kid and "/" in kid:
            return kid


def base64url_kid() -> str:
    """43 characters of unpadded base64url (Okta, Keycloak)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def hex_kid() -> str:
    """40 hex digits (Google's key ids are SHA-1 digests)."""
    return secrets.token_hex(20)


@dataclass(frozen=True, slots=True)
class ProviderTraits:
    """One real issuer's habits beyond its claims (the defaults: a generic OIDC issuer).

    ``kid``: makes each new key's id (None: a short random one; ``"x5t"``: the key's
    certificate thumbprint, as Entra's). The rest are documented per field.
    """

    kid: KidStyle = None
    #: Sign access tokens with their own key pair (Cognito).
    access_key: bool = False
    #: Keys published beside each signing key that sign nothing (Google: at least two in all).
    spare_keys: int = 0
    #: ``(authorize, token)`` endpoint URLs for a mock; None: ``<issuer>/authorize`` and ``/token``.
    endpoints: Callable[[MockIdP], tuple[str, str]] | None = None
    #: Whether the authorization response carries ``iss`` (RFC 9207) and discovery says so.
    iss_parameter: bool = True
    #: The key set's ``Cache-Control`` (None: the mock's ``cache_max_age``).
    jwks_cache_control: str | None = None
    #: The JWK Set URL the discovery document names, when it is not the mock's ``jwks_uri``.
    discovery_jwks_uri: str | None = None
