"""The browser sign-in rules every integration shares, whatever its framework and HTTP client.

Owns: which issuers offer a sign-in and with which OAuth client
(:func:`sign_in_clients`, from each entry's ``login:``), what the token
endpoint's answer must carry and what the bridge-verified id token must match
(:func:`id_token_of`, :func:`check_id_token`: OIDC Core §3.1.3.7, the nonce of
§15.5.2), which server an authorization response may come from
(:func:`check_response_issuer`: RFC 9207, the mix-up defence of RFC 9700 §4.4), which
of a browser's sign-ins are still open (:func:`start_sign_in`, :func:`finish_sign_in`:
each state used once and within its own lifetime, several tabs at once), and when a
``/sso`` URL token is usable once (:func:`url_token_claim`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..config import is_loopback_url
from ..errors import (
    ConfigError,
    FederationError,
    InvalidClaim,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    LoginRefused,
    WrongTokenType,
)
from ..spi import ProviderProfile, ResponseTooLarge, StrictJSONError, later, loads_object, numeric_date
from ._core import read_secret

if TYPE_CHECKING:
    from ..bridge import Bridge
    from ..spi import VerifiedToken

__all__ = [
    "MAX_OPEN_SIGN_INS",
    "SIGN_IN_MAX_AGE",
    "SignInClient",
    "check_id_token",
    "check_metadata",
    "check_response_issuer",
    "finish_sign_in",
    "id_token_of",
    "read_userinfo",
    "sign_in_clients",
    "spent_state_claim",
    "spent_token_claim",
    "start_sign_in",
    "token_endpoint_failure",
    "url_token_claim",
    "userinfo_endpoint",
]


MAX_OPEN_SIGN_INS = 5
"""Sign-ins one browser may have open at once (tabs); a sixth drops the oldest."""

SIGN_IN_MAX_AGE = 600.0
"""Seconds a sign-in may take at the identity provider: each state's own lifetime."""

SIGN_IN_CLOCK_SKEW = 60.0
"""How far ahead of this server's clock a state's start may be: another server behind the
same load balancer started it, by its own clock."""


def _open_sign_ins(stored: object, now: float) -> dict[str, dict[str, Any]]:
    """The well-formed sign-ins of ``stored`` (a browser's, as saved) begun within their lifetime."""
    if not isinstance(stored, dict):
        return {}
    kept: dict[str, dict[str, Any]] = {}
    for state, data in stored.items():
        if not (isinstance(state, str) and isinstance(data, dict)):
            continue
        started = data.get("at")
        if isinstance(started, bool) or not isinstance(started, (int, float)):
            continue
        if -SIGN_IN_CLOCK_SKEW <= now - started < SIGN_IN_MAX_AGE:
            kept[state] = data
    return kept


def start_sign_in(
    stored: object,
    state: str,
    data: Mapping[str, Any],
    *,
    issuer: str,
    now: float,
    budget: int | None = None,
) -> dict[str, dict[str, Any]]:
    """What a browser keeps once it begins a sign-in at ``issuer`` with ``state``.

    Each open sign-in keeps its own state until it is used or its
    :data:`SIGN_IN_MAX_AGE` passes, so a second tab does not break the first
    (RFC 6749 §10.12, RFC 9700 §4.7.1: the state binds one request to this browser).
    The oldest are dropped past :data:`MAX_OPEN_SIGN_INS`, or while the JSON is over
    ``budget`` bytes (a cookie-held store: a browser ignores a cookie over 4 KB, and the
    sign-in with it). A ``next`` that would not fit even alone is dropped, not the sign-in:
    the browser lands where a missing ``next`` sends it.
    """
    pending = _open_sign_ins(stored, now)
    pending.pop(state, None)
    entry = {**data, "issuer": issuer, "at": now}

    def size(sign_ins: Mapping[str, Any]) -> int:
        # json.dumps' default separators and escapes: what Starlette's session cookie holds
        return len(json.dumps(sign_ins))

    if budget is not None and size({state: entry}) > budget:
        entry.pop("next", None)

    def over_budget() -> bool:
        return budget is not None and size({**pending, state: entry}) > budget

    while pending and (len(pending) >= MAX_OPEN_SIGN_INS or over_budget()):
        pending.pop(min(pending, key=lambda k: pending[k]["at"]))
    pending[state] = entry
    return pending


def finish_sign_in(
    stored: object, state: str | None, *, issuer: str, now: float
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The data saved for ``state`` at ``issuer`` (None: none open), and what the browser keeps.

    The state is spent whatever the answer: a callback is tried once.
    """
    pending = _open_sign_ins(stored, now)
    data = pending.pop(state, None) if state else None
    if data is not None and data.get("issuer") != issuer:
        data = None  # another issuer's sign-in: the mix-up defence keeps them apart
    return data, pending


def spent_state_claim(state: str, data: Mapping[str, Any]) -> tuple[str, datetime]:
    """The replay-cache key of a sign-in's ``state`` once :func:`finish_sign_in` returned
    its ``data``, and until when to keep it (the state's own lifetime).

    A browser-held store forgets a spent state only in the copy the callback rewrote; an
    earlier copy of the cookie, restored, would open it again. Claimed once
    (``SessionStore.claim_once``) before the code is used, a state is spent for every copy.
    """
    digest = hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()
    started = datetime.fromtimestamp(float(data["at"]), timezone.utc)
    return f"sign-in\x00{data.get('issuer')}\x00{digest}", later(started, SIGN_IN_MAX_AGE + 1)


@dataclass(frozen=True, slots=True)
class SignInClient:
    """One issuer's sign-in: the OAuth client registered there and where its metadata is."""

    name: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    discovery_url: str
    #: The issuer entry the sign-in belongs to: its id token must be one of this entry's issuers.
    profile: ProviderProfile | None = field(default=None, compare=False)
    #: ``login.max_age``: the oldest sign-in at the provider this one accepts (``auth_time``).
    max_age: int | None = None
    #: ``login.userinfo``: the UserInfo response completes the id token's claims.
    userinfo: bool = False
    #: ``login.prompt``: what the provider is asked to show (OIDC Core §3.1.2.1).
    prompt: tuple[str, ...] = ()

    def authorization_params(self) -> dict[str, str]:
        """What the authorization request asks beside the flow's own parameters."""
        params = {} if self.max_age is None else {"max_age": str(self.max_age)}
        if self.prompt:
            params["prompt"] = " ".join(self.prompt)  # space-delimited, in the configured order
        return params

    def issued(self, verified: VerifiedToken) -> bool:
        """Whether ``verified`` comes from an issuer of this sign-in's entry (OIDC Core
        §3.1.3.7 step 2), by the entry's own rules: its listed issuers exactly, else its
        ``matches_issuer`` (an Entra tenant that cannot be listed). Without an entry: no."""
        profile = self.profile
        if profile is None:
            return False
        iss = verified.issuer
        return iss in profile.trusted_issuers or profile.matches_issuer(iss, verified.claims)

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
        clients[name] = SignInClient(
            name,
            login.client_id,
            secret,
            tuple(login.scopes),
            discovery,
            profile,
            login.max_age,
            login.userinfo,
            tuple(login.prompt or ()),
        )
    return clients


def check_metadata(metadata: Mapping[str, object], client: SignInClient) -> None:
    """The provider's metadata belongs to the sign-in's issuer (RFC 8414 §3.3, OIDC Discovery
    §4.3: its ``issuer`` is the issuer it was fetched for), or nothing of it is used: its
    endpoints, and the ``issuer`` that :func:`check_response_issuer` compares with.

    The issuer must be one the entry lists. One exception: the entry of a provider that routes
    issuers it cannot list (its profile overrides ``matches_issuer``: Entra, for any tenant)
    may have metadata naming a template, as Entra's multi-tenant endpoints name
    ``https://login.microsoftonline.com/{tenantid}/v2.0``. A ``{`` is never part of an issuer
    URL (RFC 3986), so no token can carry it, and the id tokens of such a sign-in are still
    bound to its entry by :meth:`SignInClient.issued`.
    """
    issuer = metadata.get("issuer")
    profile = client.profile
    if profile is not None and isinstance(issuer, str):
        if issuer in profile.trusted_issuers:
            return
        if "{" in issuer and type(profile).matches_issuer is not ProviderProfile.matches_issuer:
            return
    raise KeySetUnavailable(
        "the identity provider's metadata names another issuer than this sign-in's",
        issuer=client.name,
        reason="discovery_issuer_mismatch",
        url=client.discovery_url,
    )


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


def half_hash(value: str, alg: str) -> str | None:
    """OIDC Core §3.1.3.6's ``at_hash`` (and ``c_hash``) of ``value`` for an id token signed
    with ``alg``: the left half of the hash of its ASCII octets, base64url without padding.
    The hash is the one of ``alg`` (SHA-256 for RS256, PS256, ES256 ...); for EdDSA over
    Ed25519, SHA-512 (errata set 2). None for a value that is not ASCII or an alg outside
    that list: nothing can match then."""
    import base64

    from cryptography.hazmat.primitives import hashes

    digests: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
        "256": hashes.SHA256,
        "384": hashes.SHA384,
        "512": hashes.SHA512,
    }
    if alg in ("EdDSA", "Ed25519"):
        algorithm: hashes.HashAlgorithm = hashes.SHA512()
    elif alg[:2] in ("RS", "PS", "ES") and alg[2:] in digests:
        algorithm = digests[alg[2:]]()
    else:
        return None
    if not value.isascii():
        return None
    digest = hashes.Hash(algorithm)
    digest.update(value.encode("ascii"))
    full = digest.finalize()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")


def check_id_token(
    verified: VerifiedToken,
    expected_nonce: object,
    client: SignInClient,
    *,
    answer: Mapping[str, object] | None = None,
    code: str | None = None,
    now: float | None = None,
    leeway: float = 0,
) -> None:
    """The verified token is an id token of ``client``'s issuer carrying this sign-in's nonce
    (compared in constant time) and bound to what came with it.

    The bridge verifies a token by the issuer it names, any trusted one: a token endpoint
    that answers with another issuer's id token (a compromised provider replaying one it
    obtained, with the nonce it was sent) is refused here, ``issuer_mismatch`` (OIDC Core
    §3.1.3.7 step 2). An ``at_hash`` must be the hash of the ``access_token`` of the token
    endpoint's ``answer``, and a ``c_hash`` that of the ``code`` exchanged (§3.1.3.8,
    §3.3.2.10), ``at_hash_mismatch`` / ``c_hash_mismatch`` otherwise; absent, there is
    nothing to compare (both are optional in the code flow). When the sign-in asked for a
    ``max_age``, the token's ``auth_time`` must be a number at most that many seconds
    (plus ``leeway``) before ``now`` (§3.1.3.7 step 13: ``auth_time_missing``, ``auth_too_old``).
    """
    if verified.token_type != "id":
        raise WrongTokenType("the sign-in returned a token that is not an id token")
    if not client.issued(verified):
        raise InvalidToken(
            "the id token comes from another issuer than this sign-in's", code="issuer_mismatch"
        )
    access_token = answer.get("access_token") if answer is not None else None
    for claim, value in (("at_hash", access_token), ("c_hash", code)):
        if claim in verified.claims and isinstance(value, str):
            expected = half_hash(value, verified.algorithm)
            found = verified.claims[claim]
            if (
                expected is None
                or not isinstance(found, str)
                or not hmac.compare_digest(found.encode("utf-8", "replace"), expected.encode())
            ):
                raise InvalidToken(
                    f"the id token's {claim} does not match what came with it", code=f"{claim}_mismatch"
                )
    if client.max_age is not None:
        try:  # a NumericDate: a finite JSON number in range, never a string or a boolean
            auth_time = numeric_date(verified.claims, "auth_time", required=True)
        except InvalidClaim:
            auth_time = None
        if auth_time is None:
            raise InvalidToken(
                "the sign-in asked for max_age and the id token has no auth_time", code="auth_time_missing"
            )
        moment = time.time() if now is None else now
        if moment - auth_time > client.max_age + leeway:
            raise InvalidToken(
                f"the user signed in at the provider more than {client.max_age} seconds ago (max_age)",
                code="auth_too_old",
            )
    nonce = verified.claims.get("nonce")
    if (
        not isinstance(nonce, str)
        or not isinstance(expected_nonce, str)
        or not hmac.compare_digest(nonce.encode(), expected_nonce.encode())
    ):
        raise InvalidToken("the id token's nonce is not this sign-in's", code="nonce_mismatch")


#: How long past its ``exp`` a spent token's claim is kept: the largest leeway an issuer may have.
_SPENT_PAST_EXPIRY = 300


def userinfo_endpoint(metadata: Mapping[str, object], *, allow_loopback_http: bool = False) -> str:
    """The UserInfo endpoint the provider's metadata names (``login.userinfo``), where the
    access token may go: ``https``, or ``http`` to a loopback host with
    ``keys.allow_loopback_http`` (RFC 6750 §5.3: a bearer token travels over TLS only).
    Without one the sign-in cannot complete as configured: ``LoginRefused``
    (``provider_error``)."""
    url = metadata.get("userinfo_endpoint")
    if not isinstance(url, str) or not url:
        raise LoginRefused(
            "the identity provider's metadata names no userinfo_endpoint (login.userinfo)",
            code="provider_error",
        )
    scheme = url.partition(":")[0].lower()
    if not (scheme == "https" or (scheme == "http" and allow_loopback_http and is_loopback_url(url))):
        raise LoginRefused(
            "the identity provider's userinfo_endpoint is not an https URL (login.userinfo)",
            code="provider_error",
        )
    return url


def read_userinfo(
    status: int, content_type: str | None, body: bytes, name: str, max_depth: int
) -> dict[str, Any]:
    """The claims of a UserInfo response (OIDC Core §5.3.2: a JSON object, 200).

    A 5xx is the provider unavailable (``KeySetUnavailable``, ``provider_unavailable``);
    any other status, a signed or encrypted answer (``application/jwt``, not supported)
    or a body that is not one strict JSON object is ``LoginRefused`` (``provider_error``).
    """
    if status >= 500:
        raise _provider_unavailable(name)
    if status != 200:
        raise LoginRefused(
            f"the identity provider refused the UserInfo request (HTTP {status})", code="provider_error"
        )
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        detail = "is signed or encrypted (not supported)" if media == "application/jwt" else "is not JSON"
        raise LoginRefused(f"the identity provider's UserInfo response {detail}", code="provider_error")
    try:
        return loads_object(body, max_depth=max_depth)
    except StrictJSONError:
        raise LoginRefused(
            "the identity provider's UserInfo response is not a JSON object", code="provider_error"
        ) from None


def _provider_unavailable(name: str) -> KeySetUnavailable:
    """The provider down or unreachable mid-sign-in: 503, code ``provider_unavailable``."""
    failure = KeySetUnavailable("the identity provider cannot be reached; sign in again", issuer=name)
    failure.code = "provider_unavailable"
    return failure


def token_endpoint_failure(exc: Exception, name: str) -> FederationError:
    """What the provider's token (or UserInfo) endpoint failing means for a callback: the provider down
    or unreachable (a transport error, a 5xx) is ``KeySetUnavailable`` (503, code
    ``provider_unavailable``: sign in again later); an answer refusing the code is
    ``LoginRefused`` (403, ``provider_error``)."""
    import httpx

    if isinstance(exc, ResponseTooLarge):  # an answer past the bound: the provider misbehaves
        return LoginRefused("the identity provider did not complete the sign-in", code="provider_error")
    if isinstance(exc, httpx.TransportError) or (
        isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500
    ):
        return _provider_unavailable(name)
    return LoginRefused("the identity provider did not complete the sign-in", code="provider_error")


def url_token_claim(
    verified: VerifiedToken, *, now: float, max_age: int, token: str | bytes | None = None
) -> tuple[str, datetime]:
    """The replay-cache key of a ``/sso`` URL token and until when to keep it.

    A URL token must be fresh (``iat`` at most ``max_age`` seconds ago: it
    travels in history and logs, RFC 9700 §4.3) and single-use: claim the key once
    (``SessionStore.claim_once``) before signing anyone in. The key is
    :func:`spent_token_claim`'s, so a token spent here cannot be exchanged for a session
    at another door either. Without a ``jti`` or ``token``: ``url_token_no_jti``.
    """
    iat = verified.claims.get("iat")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool) or now - float(iat) > max_age:
        raise InvalidToken(
            f"a URL token must be at most {max_age} seconds old (iat)", code="url_token_too_old"
        )
    key, until = spent_token_claim(verified, token=token)
    if key is None:
        raise InvalidToken("a URL token needs a jti (it is single-use)", code="url_token_no_jti")
    return key, max(until, later(datetime.fromtimestamp(float(iat), timezone.utc), max_age + 60))


def spent_token_claim(
    verified: VerifiedToken, *, token: str | bytes | None = None
) -> tuple[str | None, datetime]:
    """The key under which an external token exchanged for a session is claimed once, and
    until when to keep the claim (past the token's expiry and any leeway).

    Every door that turns an external token into a session (``/sso``, token exchange,
    ``/register``) claims this one key, so a token is exchanged once, whichever door. The
    key is the token's ``jti``; a token without one (Entra's and Firebase's carry none) is
    known by the SHA-256 of its signed part, the ``token`` itself when given (header and
    payload: an ECDSA signature has a second valid form, so the signature cannot be part of
    it). None: no ``jti`` and no ``token``.
    """
    until = later(verified.expires_at, _SPENT_PAST_EXPIRY)
    jti = verified.claims.get("jti")
    if isinstance(jti, str) and jti:
        return f"sso\x00{verified.issuer}\x00{jti}", until
    if token is not None:
        raw = token.encode("ascii") if isinstance(token, str) else token
        signed = raw.rsplit(b".", 1)[0]  # verified already: exactly header.payload.signature
        return f"sso-signed\x00{verified.issuer}\x00{hashlib.sha256(signed).hexdigest()}", until
    return None, until
