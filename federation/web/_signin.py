"""The browser sign-in rules every integration shares, whatever its framework and HTTP client.

Owns: which issuers offer a sign-in and with which OAuth client
(:func:`sign_in_clients`, from each entry's ``login:``), what the token
endpoint's answer must carry and what the bridge-verified id token must match
(:func:`id_token_of`, :func:`check_id_token`: OIDC Core §3.1.3.7, the nonce of
§15.5.2), which server an authorization response may come from
(:func:`check_response_issuer`: RFC 9207, the mix-up defence of RFC 9700 §4.4), and
when a ``/sso`` URL token is usable once (:func:`url_token_claim`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import ConfigError, InvalidRequest, InvalidToken, LoginRefused, WrongTokenType
from ._core import read_secret

if TYPE_CHECKING:
    from ..bridge import Bridge
    from ..spi import VerifiedToken

__all__ = [
    "SignInClient",
    "check_id_token",
    "check_response_issuer",
    "id_token_of",
    "sign_in_clients",
    "url_token_claim",
]


@dataclass(frozen=True, slots=True)
class SignInClient:
    """One issuer's sign-in: the OAuth client registered there and where its metadata is."""

    name: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    discovery_url: str

    @property
    def auth_method(self) -> str:
        """How the client authenticates at the token endpoint (a public client: PKCE alone)."""
        return "client_secret_basic" if self.client_secret else "none"

    def __repr__(self) -> str:
        return f"SignInClient({self.name!r}, client_id={self.client_id!r})"  # never the secret


def sign_in_clients(bridge: Bridge, environ: Mapping[str, str] | None = None) -> dict[str, SignInClient]:
    """The sign-in clients of the issuer entries with ``login:``, by name (``name:`` or the provider)."""
    clients: dict[str, SignInClient] = {}
    base = bridge.config.base_dir
    for index, profile in enumerate(bridge.config.issuers):
        login = profile.login
        if login is None:
            continue
        name = profile.name or profile.provider
        if name in clients:
            raise ConfigError(
                f"issuers[{index}]: two sign-in clients are named {name!r}; give each a name:",
                field=f"issuers[{index}].name",
            )
        issuers = list(profile.trusted_issuers)
        discovery = login.discovery_url or (
            issuers[0].rstrip("/") + "/.well-known/openid-configuration" if issuers else None
        )
        if discovery is None:
            raise ConfigError(
                f"issuers[{index}].login: this provider has no issuer URL; set login.discovery_url",
                field=f"issuers[{index}].login.discovery_url",
            )
        secret = None
        if login.client_secret is not None:
            field = f"issuers[{index}].login.client_secret"
            secret = read_secret(login.client_secret, field=field, base_dir=base, environ=environ).decode()
        clients[name] = SignInClient(name, login.client_id, secret, tuple(login.scopes), discovery)
    return clients


def check_response_issuer(values: Sequence[str], metadata: Mapping[str, object]) -> None:
    """RFC 9207 §2.4: an authorization response's ``iss`` names the server that answered.

    Sent, it must be sent once and equal the metadata's ``issuer`` exactly, or the response
    comes from another server than the one the browser was sent to (a mix-up, RFC 9700
    §4.4) and its code must not reach this server's token endpoint. Absent, the response is
    refused when the metadata says the server always sends it. Checked before the code is used.
    """
    if len(values) > 1:
        raise InvalidRequest("the authorization response names its issuer twice", code="issuer_mismatch")
    if values:
        expected = metadata.get("issuer")
        if not isinstance(expected, str) or values[0] != expected:
            raise InvalidRequest(
                "the authorization response comes from another issuer (RFC 9207)", code="issuer_mismatch"
            )
    elif metadata.get("authorization_response_iss_parameter_supported") is True:
        raise InvalidRequest(
            "the authorization response does not name its issuer, which this server always does (RFC 9207)",
            code="issuer_mismatch",
        )


def id_token_of(answer: object) -> str:
    """The id token of a token endpoint's answer; :class:`~federation.errors.LoginRefused` when absent."""
    id_token = answer.get("id_token") if isinstance(answer, Mapping) else None
    if not isinstance(id_token, str):
        raise LoginRefused("the identity provider returned no id token", code="provider_error")
    return id_token


def check_id_token(verified: VerifiedToken, expected_nonce: object) -> None:
    """The verified token is an id token carrying this sign-in's nonce (compared in constant time)."""
    if verified.token_type != "id":
        raise WrongTokenType("the sign-in returned a token that is not an id token")
    nonce = verified.claims.get("nonce")
    if (
        not isinstance(nonce, str)
        or not isinstance(expected_nonce, str)
        or not hmac.compare_digest(nonce.encode(), expected_nonce.encode())
    ):
        raise InvalidToken("the id token's nonce is not this sign-in's", code="nonce_mismatch")


def url_token_claim(verified: VerifiedToken, *, now: float, max_age: int) -> tuple[str, datetime]:
    """The replay-cache key of a ``/sso`` URL token and until when to keep it.

    A URL token must be fresh (``iat`` at most ``max_age`` seconds ago: it
    travels in history and logs, RFC 9700 §4.3) and single-use (a ``jti``):
    claim the key once (``SessionStore.claim_once``) before signing anyone in.
    """
    claims = verified.claims
    iat, jti = claims.get("iat"), claims.get("jti")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool) or now - float(iat) > max_age:
        raise InvalidToken(
            f"a URL token must be at most {max_age} seconds old (iat)", code="url_token_too_old"
        )
    if not isinstance(jti, str) or not jti:
        raise InvalidToken("a URL token needs a jti (it is single-use)", code="url_token_no_jti")
    until = datetime.fromtimestamp(float(iat) + max_age + 60, timezone.utc)  # past any use
    return f"sso\x00{verified.issuer}\x00{jti}", until
