"""The exception hierarchy of federation-bridge.

Every failure the library reports is a :class:`FederationError` with a stable,
machine-readable ``code``. Applications branch on the class or the code, never
on the message, which is for humans and may change.

Two families matter to a web application:

* :class:`InvalidToken` and its subclasses: the token is not acceptable.
  Answer 401.
* :class:`KeySetUnavailable`: the issuer's keys cannot be had right now
  (network down, 5xx, garbage). The token may be perfectly good. Answer 503.

Logging in (``Bridge.login``) adds a third: :class:`LoginRefused` and its
subclasses. The token was valid, but this application refuses the person
(a mapping deny rule, a disabled account, registration closed, a refused
link). Answer 403. :class:`StorageError` means the user store failed;
answer 503.

Messages never contain the token, its signature or any value taken from it:
they say *what* failed, not what the attacker sent.

This module owns the error types only; it must not import anything else from
the package.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AccountDisabled",
    "AccountExists",
    "AccountLocked",
    "BadSignature",
    "CSRFRejected",
    "ConfigError",
    "ConnectionLost",
    "CorruptRecord",
    "DisallowedAlgorithm",
    "DuplicateIdentity",
    "FederationError",
    "InsufficientRole",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidCredentials",
    "InvalidRequest",
    "InvalidToken",
    "InvalidUserData",
    "IssuedInFuture",
    "KeySetUnavailable",
    "LinkRefused",
    "LoginRefused",
    "MalformedToken",
    "MissingToken",
    "RefreshReused",
    "RegistrationClosed",
    "RevocationUnavailable",
    "StorageConflict",
    "StorageError",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenRevoked",
    "TokenTooLarge",
    "UnknownKey",
    "UntrustedIssuer",
    "WrongTokenType",
]


class FederationError(Exception):
    """Base class of every error raised by federation-bridge.

    ``code`` is stable across releases and safe to return to clients or put in
    metrics; the message is for humans.
    """

    code: str = "federation_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable message (never contains token contents)."""
        return str(self.args[0]) if self.args else ""


class ConfigError(FederationError):
    """The bridge or mapping configuration is invalid.

    ``file``, ``line``, ``column`` and ``field`` locate the first problem when
    they are known (``line`` and ``column`` are 1-based); ``problems`` lists
    every problem found as human-readable lines.
    """

    code = "config_error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.problems = problems or (message,)


class InvalidToken(FederationError):
    """The token was rejected. Applications should answer 401.

    ``issuer`` is the *configured* issuer the token was routed to, when routing
    got that far (it is configuration, not token content).
    """

    code = "invalid_token"

    def __init__(self, message: str, *, code: str | None = None, issuer: str | None = None) -> None:
        super().__init__(message, code=code)
        self.issuer = issuer


class MissingToken(InvalidToken):
    """A request carried no credential at all (no bearer header, no session cookie)."""

    code = "missing_token"


class MalformedToken(InvalidToken):
    """Not a well-formed compact JWS: encoding, JSON, or header structure."""

    code = "malformed"


class TokenTooLarge(MalformedToken):
    """The token exceeds a configured size limit; rejected before decoding."""

    code = "token_too_large"


class UntrustedIssuer(InvalidToken):
    """The token's ``iss`` is not exactly one of the configured issuers."""

    code = "untrusted_issuer"


class UnknownKey(InvalidToken):
    """No usable key of the issuer matches the token's ``kid`` (or, without a
    ``kid``, no single key matches its algorithm)."""

    code = "unknown_key"


class BadSignature(InvalidToken):
    """The signature does not verify with the issuer's key."""

    code = "bad_signature"


class DisallowedAlgorithm(InvalidToken):
    """The ``alg`` is not allowed for this issuer, or does not fit the key."""

    code = "disallowed_algorithm"


class TokenExpired(InvalidToken):
    """``exp`` has passed (beyond the configured leeway)."""

    code = "expired"


class TokenNotYetValid(InvalidToken):
    """``nbf`` is in the future (beyond the configured leeway)."""

    code = "not_yet_valid"


class IssuedInFuture(InvalidToken):
    """``iat`` is in the future (beyond the configured leeway)."""

    code = "issued_in_future"


class InvalidAudience(InvalidToken):
    """``aud`` (or ``azp``) does not name a configured audience."""

    code = "invalid_audience"


class InvalidClaim(InvalidToken):
    """A claim is missing, of the wrong type, or out of range.

    ``claim`` names the claim (a registered name such as ``exp`` or ``sub``).
    """

    code = "invalid_claim"

    def __init__(
        self, message: str, *, claim: str, code: str | None = None, issuer: str | None = None
    ) -> None:
        super().__init__(message, code=code, issuer=issuer)
        self.claim = claim


class WrongTokenType(InvalidToken):
    """The token is of a kind this issuer is not configured to accept
    (for example an access token where only id tokens are allowed, or a
    ``logout+jwt``)."""

    code = "wrong_token_type"


class TokenRevoked(InvalidToken):
    """A session token that was revoked or superseded (``revoke``, ``revoke_user``,
    a disabled or deleted user's earlier tokens, a new generation)."""

    code = "revoked"


class RefreshReused(TokenRevoked):
    """A refresh token presented again after its reuse grace: its whole family is now revoked."""

    code = "refresh_reused"


class InvalidCredentials(InvalidToken):
    """A password login failed: unknown account or wrong password (deliberately the same error)."""

    code = "invalid_credentials"


class KeySetUnavailable(FederationError):
    """The issuer's signing keys could not be obtained and no usable cached
    copy exists. Not an :class:`InvalidToken`: applications should answer 503.

    ``reason`` is the failure slug (``http_503``, ``timeout``, ...), ``url`` the
    key set or discovery URL that failed (never anything from a token).
    """

    code = "keyset_unavailable"

    def __init__(
        self, message: str, *, issuer: str | None = None, reason: str | None = None, url: str | None = None
    ) -> None:
        super().__init__(message)
        self.issuer = issuer
        self.reason = reason
        self.url = url  # the key set or discovery URL that failed (from config or discovery)


# -- logging in: the token was valid, the application refuses the person ----------------


class LoginRefused(FederationError):
    """A valid token whose holder may not log in. Not an :class:`InvalidToken`:
    the token was fine. Applications should answer 403.

    ``reason`` refines ``code`` (the deny code of a mapping rule, or which
    provisioning rule refused); ``issuer`` and ``subject`` are the identity key
    of the token (``issuer`` may be a namespace such as ``entra:<tid>``);
    ``user_id`` is the local user concerned, when there is one.
    """

    code = "login_refused"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        issuer: str | None = None,
        subject: str | None = None,
        user_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.reason = reason
        self.issuer = issuer
        self.subject = subject
        self.user_id = user_id


class AccessDenied(LoginRefused):
    """A deny rule of the mapping fired; ``reason`` is the rule's own code."""

    code = "access_denied"


class AccountDisabled(LoginRefused):
    """The local user is disabled (a valid token does not make it active again)."""

    code = "account_disabled"


class RegistrationClosed(LoginRefused):
    """No local user exists for the identity and none may be created.

    ``reason``: ``creation_disabled`` (``provisioning.create_users: false``),
    ``email_domain_not_allowed`` or ``email_not_verified`` (with
    ``provisioning.allowed_email_domains``).
    """

    code = "registration_closed"


class LinkRefused(LoginRefused):
    """The identity's verified email matches an existing user, but linking is not allowed.

    ``reason``: ``email_not_verified``, ``issuer_not_trusted``,
    ``issuer_already_linked``, ``ambiguous_email``, ``target_email_not_verified``
    or ``email_domain_not_allowed``.
    """

    code = "link_refused"


class InsufficientRole(LoginRefused):
    """The user is who they say, but lacks a role the endpoint requires."""

    code = "insufficient_role"


class AccountLocked(LoginRefused):
    """Too many failed password logins for this account or client address; ``retry_after`` seconds."""

    code = "account_locked"

    def __init__(self, message: str, *, retry_after: float = 0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AccountExists(LoginRefused):
    """register_local: another local account has this username or email."""

    code = "account_exists"


class InvalidUserData(LoginRefused):
    """A mapped value cannot be stored (control characters, too long, not JSON).

    ``attribute`` names the attribute; the value is never in the message.
    """

    code = "invalid_attribute"

    def __init__(self, message: str, *, attribute: str, **context: str | None) -> None:
        super().__init__(message, **context)
        self.attribute = attribute


# -- the user store ------------------------------------------------------------------------


class StorageError(FederationError):
    """The user store failed (unreachable, schema too new, retries exhausted).
    Applications should answer 503."""

    code = "storage_error"


class RevocationUnavailable(StorageError):
    """The shared revocation store (Redis) cannot be reached: tokens are refused, never trusted
    unchecked. Applications should answer 503."""

    code = "revocation_unavailable"


class StorageConflict(StorageError):
    """Raised by a store inside a transaction when a concurrent transaction
    interfered (a serialization failure, a deadlock, a unique index). The
    provisioning core rolls back and retries the whole transaction."""

    code = "storage_conflict"


class DuplicateIdentity(StorageConflict):
    """Raised by a store when an identity (issuer, subject) already exists:
    a concurrent first login won the race. Retried like any conflict."""

    code = "duplicate_identity"


class ConnectionLost(StorageError):
    """Raised by a store when its database connection broke before the transaction committed
    (the server restarted, a proxy or ``pg_terminate_backend`` dropped it): nothing was
    written. Provisioning and the session store retry once, at once, on a new connection; a
    connection lost at commit is a plain :class:`StorageError` (the outcome is unknown)."""

    code = "storage_error"


class CorruptRecord(StorageError):
    """A row read from the store holds what no release writes (JSON that does not parse, a time
    that is not one, a wrong type, an unknown status): another program wrote it, or it was damaged.
    Nothing is made of it, and nothing is written. The message names the field, never its value."""

    code = "corrupt_record"


# -- the web layer: a request the service refuses before any token is judged -------------


class InvalidRequest(FederationError):
    """A malformed request to the web layer (a missing parameter, an empty bearer header). 400."""

    code = "invalid_request"


class CSRFRejected(FederationError):
    """A cookie-authenticated unsafe request without the CSRF token or a same-origin Origin. 403."""

    code = "csrf_failed"
