"""The contract between the provider-neutral engine and a provider profile.

Owns: :class:`ProviderProfile`, the base of every profile's configuration
model, with the hooks the engine calls and their generic-OIDC defaults;
:class:`KeySourceSpec` (where a profile's keys come from and in which format);
:class:`TokenContext` (what a profile's extra rules see, after the signature
has verified); :class:`Identity` (the provider-neutral view of a user that
mapping and provisioning consume); and the claim helpers profiles share
(:func:`check_client_bound_access`: access tokens bound by ``client_id``
instead of ``aud``, for Cognito and the generic profile).

A profile never performs I/O and never trusts the token to choose where keys
come from: every URL is derived from configuration.

Must not: import the bridge or the key cache.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ._rfc7517 import VerificationKey
from ._rfc7518 import ASYMMETRIC_ALGORITHMS, NEVER_ALLOWED, SPECS
from ._rfc7519 import TokenType, audience_values, classify_token
from .errors import InvalidAudience
from .frozen import fast_init, record_factory

__all__ = [
    "DEFAULT_ALGORITHMS",
    "Identity",
    "KeyRef",
    "KeySourceSpec",
    "LoginConfig",
    "ProviderProfile",
    "TokenContext",
    "as_strict_bool",
    "as_string_list",
    "check_client_bound_access",
]

#: Every asymmetric JWS algorithm the engine implements, in the algorithm table's
#: order (RS, PS, ES, EdDSA, Ed25519); HMAC and ``none`` never.
DEFAULT_ALGORITHMS: tuple[str, ...] = tuple(SPECS)


@dataclass(frozen=True, slots=True)
class KeySourceSpec:
    """Where one profile's keys come from; every URL comes from configuration.

    ``discovery_issuer`` is the ``issuer`` a discovery document must state
    exactly (Entra's multi-tenant documents state a ``{tenantid}`` template).
    ``format`` is ``jwks`` (RFC 7517) or ``x509_pem_map`` (Google's
    ``{kid: PEM certificate}`` map, used by Firebase).
    """

    name: str
    jwks_uri: str | None = None
    discovery_url: str | None = None
    discovery_issuer: str | None = None
    format: Literal["jwks", "x509_pem_map"] = "jwks"


@fast_init
@dataclass(frozen=True, slots=True)
class TokenContext:
    """What a profile's extra rules see: a token whose signature has verified."""

    issuer: str
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    token_type: TokenType
    key: VerificationKey
    now: float  # the bridge's clock, Unix seconds
    leeway: float  # the configured clock skew allowance, seconds
    max_audiences: int  # the configured bound, for profiles that read 'aud' themselves


@fast_init
@dataclass(frozen=True, slots=True)
class Identity:
    """The provider-neutral view of who the token is about.

    ``key`` is the stable identity key, a (namespace, id) pair: (issuer,
    subject) for most providers, (``entra:<tid>``, oid) for Entra ID. Never
    an email. ``email_verified`` is True only when the provider vouches for
    the address in the way it documents. ``groups_overage`` is True when the
    provider omitted groups because there were too many (Entra): "no groups"
    would then be a lie.
    """

    key: tuple[str, str]
    email: str | None = None
    email_verified: bool = False
    username: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    groups_overage: bool = False


# What the engine's hot path and the generic identity build for every verified token.
make_token_context = record_factory(TokenContext)
make_identity = record_factory(Identity)


def as_string_list(value: object) -> tuple[str, ...]:
    """A claim that may be one string or a list of strings, as a tuple (others dropped)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def as_strict_bool(value: object, *, accept_strings: bool = False) -> bool:
    """True only for JSON ``true`` (or the string ``"true"``, in any case, where a provider
    documents strings)."""
    if value is True:
        return True
    return accept_strings and isinstance(value, str) and value.lower() == "true"


def check_client_bound_access(
    token: TokenContext,
    *,
    client_ids: Collection[str],
    audiences: Collection[str] | None,
    client_id_always: bool,
) -> None:
    """Bind an access token to this application when it may carry no ``aud``.

    Cognito-style issuers name the app client in ``client_id`` and leave ``aud``
    out (RFC 9068 makes ``aud`` required; they predate or ignore it). Profiles
    whose :meth:`ProviderProfile.audiences_for` returns None for access tokens
    call this from :meth:`ProviderProfile.check`:

    * ``client_id`` must be one of ``client_ids`` whenever ``client_id_always``
      (Cognito) or the token has no ``aud`` (generic OIDC);
    * a present ``aud`` must name one of ``audiences``; with ``audiences`` None
      (Cognito without resource binding) a present ``aud`` is refused: the token
      was bound to some resource server, and none is configured as this one
      (RFC 8707 section 2, RFC 9068 section 4).
    """
    claims = token.claims
    has_aud = "aud" in claims
    if client_id_always or not has_aud:
        client_id = claims.get("client_id")
        if not isinstance(client_id, str):
            raise InvalidAudience("the access token has no 'client_id' string", issuer=token.issuer)
        if client_id not in client_ids:
            raise InvalidAudience(
                "the access token was issued to a client that is not configured", issuer=token.issuer
            )
    if has_aud and audiences is None:
        raise InvalidAudience(
            "the access token is bound to a resource server, and no 'audiences' are configured",
            issuer=token.issuer,
        )
    if has_aud and audiences is not None:
        values = audience_values(claims, max_audiences=token.max_audiences, issuer=token.issuer)
        if not values:
            raise InvalidAudience("the token has no audience", issuer=token.issuer)
        if set(audiences).isdisjoint(values):
            raise InvalidAudience(
                "the access token is intended for an audience that is not configured", issuer=token.issuer
            )
        azp = claims.get("azp")
        if len(values) > 1 and azp is not None and azp not in audiences:
            # The engine's rule for several audiences (OIDC Core §3.1.3.7 step 5), kept here.
            raise InvalidAudience("'azp' is not a configured audience", issuer=token.issuer)


class KeyRef(BaseModel):
    """Where a key or secret comes from: a file (relative to the config file) or an environment variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(None, min_length=1)
    env: str | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str):  # a secret written into the config itself: say where it goes
            raise ValueError("give it as {env: VARIABLE} or {file: path}, not written into the config")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> KeyRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env'")
        return self

    def entry(self) -> dict[str, str]:
        """``{"file": ...}`` or ``{"env": ...}``."""
        return {"file": self.file} if self.file is not None else {"env": str(self.env)}


def _not_a_boolean(value: Any) -> Any:
    """A number field's value is never true or false. YAML reads ``yes``, ``no``, ``on`` and
    ``off`` as booleans, and pydantic takes a boolean as 1 or 0: ``leeway: on`` was a second."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


#: The numbers of the configuration: seconds, sizes and counts (a boolean is refused).
Number = Annotated[float, BeforeValidator(_not_a_boolean)]
Count = Annotated[int, BeforeValidator(_not_a_boolean)]


class LoginConfig(BaseModel):
    """An issuer's "Sign in with ..." client (the web service's /login/{issuer}, docs/web.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1, description="The app's OAuth client id at this issuer.")
    client_secret: KeyRef | None = Field(
        None, description="The client secret (file or env); none for a public client (PKCE alone)."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "email", "profile"],
        description="Scopes asked for; openid is required.",
    )
    discovery_url: str | None = Field(
        None,
        description="Where the authorization and token endpoints are found "
        "(default: the issuer's /.well-known/openid-configuration).",
    )
    max_age: Count | None = Field(
        None,
        ge=0,
        le=366 * 86400,
        description="Seconds: ask the provider to sign the user in again when their sign-in there "
        "is older (OIDC max_age); the id token's auth_time is then required and checked.",
    )
    prompt: list[Literal["none", "login", "consent", "select_account"]] | None = Field(
        None,
        description="What the provider is asked to show (OIDC prompt): login to sign the user in "
        "again even when they have a session there (also for a provider that ignores max_age), "
        "consent, select_account; none to show nothing. One value or a list.",
    )
    userinfo: bool = Field(
        False,
        description="Also read the provider's UserInfo endpoint with the access token (OIDC Core "
        "§5.3) and add the claims the id token lacks: for a provider that puts email or profile "
        "claims only there. Its sub must be the id token's.",
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt_or_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("prompt")
    @classmethod
    def _prompt_values(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value or len(set(value)) != len(value):
            raise ValueError("prompt lists each value once, and at least one")
        if "none" in value and len(value) > 1:  # OIDC Core §3.1.2.1: an error at the provider
            raise ValueError("prompt none cannot be combined with another value")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("the scopes must include openid (the flow ends in an id token)")
        if any(not s or " " in s for s in value):
            raise ValueError("a scope is one non-empty word")
        return value


class ProviderProfile(BaseModel):
    """Base of every provider profile: a typed config model plus the rules it adds.

    Subclasses set ``provider`` to a ``Literal`` (the discriminator in
    ``federation.yaml``) and override the hooks below; the defaults implement
    generic OpenID Connect.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Longest accepted ``sub``; OIDC Core §2 says 255 ASCII characters.
    max_subject_length: ClassVar[int] = 255
    #: When set, the only algorithms the provider signs with: configuration may narrow, not widen.
    signing_algorithms: ClassVar[frozenset[str] | None] = None
    #: When set, why the provider's access tokens cannot be verified here: ``token_types`` must be [id].
    id_tokens_only: ClassVar[str | None] = None

    provider: str
    algorithms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALGORITHMS),
        min_length=1,
        description="Allowed 'alg' values; asymmetric algorithms only.",
    )
    trust_email: bool = Field(
        False,
        description="Trust this issuer's verified emails for linking to existing users "
        "(provisioning.link_by_email). Only for issuers that own the email domains they vouch for.",
    )
    name: str | None = Field(
        None, description="A label for this entry, for logs and for mapping rules scoped by issuer."
    )
    token_types: list[TokenType] = Field(
        default_factory=lambda: ["id", "access"],  # type: ignore[arg-type]
        min_length=1,
        description="Which token kinds are accepted (id and/or access).",
    )
    jwks_file: str | None = Field(
        None,
        description="A key file (relative to the config file) used instead of fetching: a JWK Set, "
        "or for x509_pem_map providers a {kid: PEM} map, as JSON. For air-gapped deployments; "
        "keys are never fetched for this entry.",
    )
    login: LoginConfig | None = Field(
        None, description="A sign-in client for this issuer: enables the web service's /login/{issuer}."
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        for alg in value:
            if alg in NEVER_ALLOWED or alg.lower() == "none":
                raise ValueError(f"algorithm {alg!r} is never accepted from an issuer with a key set")
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"unknown algorithm {alg!r}; supported: {', '.join(DEFAULT_ALGORITHMS)}")
        if cls.signing_algorithms is not None and not cls.signing_algorithms.issuperset(value):
            raise ValueError(f"this provider signs with {', '.join(sorted(cls.signing_algorithms))} only")
        return value

    @field_validator("token_types")
    @classmethod
    def _kinds_the_provider_issues(cls, value: list[TokenType]) -> list[TokenType]:
        if cls.id_tokens_only is not None and "access" in value:
            raise ValueError(cls.id_tokens_only)
        return value

    # -- routing ------------------------------------------------------------------------

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        """The exact ``iss`` strings this profile accepts (looked up in a dict)."""
        raise NotImplementedError

    def matches_issuer(self, iss: str, claims: Mapping[str, Any]) -> bool:
        """For issuers that cannot be listed (e.g. any Entra tenant): does ``iss``
        belong to this profile? Consulted only after the exact lookup missed."""
        return False

    @classmethod
    def namespace_of(cls, issuer: str) -> str | None:
        """The canonical namespace of an issuer string as this provider spells it, or None
        when it is no issuer of this provider's form.

        Every spelling of one issuer (Google's two strings, Cognito's two forms, Entra's
        v1 and v2 issuers of a tenant) gives one value, the namespace of the identities
        it issues (``Identity.key[0]``). Mapping rules scoped by issuer compare by it, so
        a rule listed under one spelling also holds for the others. A class method: it
        reads the string alone, never the configuration, so dry runs that know only the
        provider's name agree with verified logins. Default: the issuer itself (exact).
        """
        return issuer

    # -- keys ---------------------------------------------------------------------------

    @property
    def key_source(self) -> KeySourceSpec:
        """Where this profile's keys come from."""
        raise NotImplementedError

    # -- token rules --------------------------------------------------------------------

    def check_unverified(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        """Refusals decidable before key lookup, from the *unverified* header and claims
        (no fetch for a token that can never verify). Only ever refuses: nothing read
        here may make a token acceptable. Default: :meth:`check_header`."""
        self.check_header(header)

    def check_header(self, header: Mapping[str, Any]) -> None:
        """Rules on the unverified header, run before key lookup and signature
        (e.g. Entra's Graph tokens, whose ``nonce`` header makes them
        unverifiable, get a clear code instead of ``bad_signature``). Must not
        trust the header for anything but refusing."""

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        """The token's kind; raise :class:`~federation.errors.WrongTokenType` for other kinds."""
        return classify_token(header, claims)

    def audiences_for(self, token_type: TokenType) -> frozenset[str] | None:
        """Accepted ``aud`` values for this kind, or None when :meth:`check` binds the
        token to the client itself (e.g. Cognito access tokens carry ``client_id``)."""
        raise NotImplementedError

    def require_iat(self, token_type: TokenType) -> bool:
        """Whether ``iat`` must be present (OIDC Core §2: always for id tokens)."""
        return token_type == "id"

    def check(self, token: TokenContext) -> None:
        """Extra rules of the provider, after signature and registered claims."""

    def identity(self, token: TokenContext) -> Identity:
        """The provider-neutral identity (generic OIDC claims)."""
        claims = token.claims
        email = claims.get("email")
        username = claims.get("preferred_username")
        groups = claims.get("groups")
        roles = claims.get("roles")
        if not isinstance(email, str):
            email = None
        # Positional, absent claims read inline: this runs for every verified token.
        return make_identity(
            (token.issuer, str(claims["sub"])),
            email,
            email is not None and claims.get("email_verified") is True,
            username if isinstance(username, str) else None,
            () if groups is None else as_string_list(groups),
            () if roles is None else as_string_list(roles),
        )
