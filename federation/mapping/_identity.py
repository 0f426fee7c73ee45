"""The normalised view for dry runs: an :class:`Identity` from raw claims.

Owns: building the ``$``-names a mapping reads (``$email``,
``$email_verified``, ``$groups`` ...) when there is no verified token:

* with a provider profile from ``federation.yaml``, the profile's own
  ``identity()`` runs on the claims, exactly as at verification;
* with only a provider name, the profile class runs with stand-in settings
  derived from the claims (Keycloak: every client in ``resource_access``
  counts as configured, so ``$roles`` lists all client roles; Okta: the
  default ``groups`` claim), so the provider's normalisation rules (Entra's
  ``xms_edov``, Cognito's string booleans, Google's authoritative domains)
  apply; if that is impossible, generic OpenID Connect rules apply.

Nothing here verifies anything: a dry run trusts the claims it is given.

Must not: be used on the verification path (a verified token carries its
identity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from federation.providers import PROFILE_MODELS
from federation.spi import (
    Identity,
    ProviderProfile,
    TokenContext,
    TokenType,
    VerificationKey,
    as_strict_bool,
    as_string_list,
    classify_token,
)

__all__ = ["dry_run_identity", "dry_run_token_type"]

_MODELS: dict[str, type[ProviderProfile]] = {
    str(model.model_fields["provider"].default): model for model in PROFILE_MODELS
}


def _stand_in(provider: str, claims: Mapping[str, Any], issuer: str) -> ProviderProfile | None:
    model = _MODELS.get(provider)
    if model is None:
        return None
    fields: dict[str, Any] = {"provider": provider}
    if provider == "keycloak":
        access = claims.get("resource_access")
        fields["client_ids"] = list(access) if isinstance(access, dict) else []
    elif provider == "okta":
        fields["domain"] = urlsplit(issuer).hostname or "okta.invalid"
    elif provider == "cognito":
        pool = issuer.rstrip("/").rsplit("/", 1)[-1]
        fields["user_pool_id"] = pool if "_" in pool else "dry-run_pool"
    elif provider == "azure_ad_b2c":
        tid = claims.get("tid")
        fields["tenant_id"] = tid if isinstance(tid, str) else "dry-run"
    return model.model_construct(**fields)


def dry_run_token_type(claims: Mapping[str, Any], profile: ProviderProfile | None = None) -> TokenType:
    """The token kind the profile (or generic OIDC) would classify; ``id`` when it cannot tell."""
    try:
        if profile is not None:
            return profile.classify({}, claims)
        return classify_token({}, claims)
    except Exception:  # a dry run explains the mapping; the kind is best effort
        return "id"


def _generic(claims: Mapping[str, Any], issuer: str) -> Identity:
    email = claims.get("email")
    username = claims.get("preferred_username")
    sub = claims.get("sub")
    return Identity(
        key=(issuer, sub if isinstance(sub, str) else ""),
        email=email if isinstance(email, str) else None,
        email_verified=isinstance(email, str) and as_strict_bool(claims.get("email_verified")),
        username=username if isinstance(username, str) else None,
        groups=as_string_list(claims.get("groups")),
        roles=as_string_list(claims.get("roles")),
    )


def dry_run_identity(
    claims: Mapping[str, Any],
    provider: str,
    issuer: str,
    token_type: TokenType,
    profile: ProviderProfile | None = None,
) -> Identity:
    """The identity ``profile`` (or a stand-in for ``provider``) derives from ``claims``."""
    chosen = profile if profile is not None else _stand_in(provider, claims, issuer)
    if chosen is not None:
        context = TokenContext(
            issuer=issuer,
            header={},
            claims=claims,
            token_type=token_type,
            key=cast(VerificationKey, None),  # no profile's identity() reads the key
            now=0.0,
            leeway=0.0,
            max_audiences=50,
        )
        try:
            return chosen.identity(context)
        except Exception:  # noqa: S110 - e.g. no 'sub': fall back to the generic view
            pass
    return _generic(claims, issuer)
