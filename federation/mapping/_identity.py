"""The normalised view for dry runs: an :class:`Identity` from raw claims.

Owns: building the ``$``-names a mapping reads (``$email``,
``$email_verified``, ``$groups`` ...) when there is no verified token:

* with a provider profile from ``federation.yaml``, the profile's own
  ``identity()`` runs on the claims, exactly as at verification;
* with only a provider name, the registered profile class runs with the
  stand-in settings its plugin derives from the claims
  (``ProviderPlugin.stand_in``; e.g. every client in ``resource_access``
  counts as configured), so the provider's normalisation rules apply; if that
  is impossible, generic OpenID Connect rules apply.

Nothing here verifies anything: a dry run trusts the claims it is given.

Must not: be used on the verification path (a verified token carries its
identity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from federation import plugins
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

def _stand_in(provider: str, claims: Mapping[str, Any], issuer: str) -> ProviderProfile | None:
    plugin = plugins.get(provider)
    if plugin is None:
        return None
    fields: dict[str, Any] = {**plugin.stand_in(claims, issuer), "provider": provider}
    return plugin.model.model_construct(**fields)


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
        except Exception:  # e.g. no 'sub', or Entra without 'oid': the generic view, but
            # never a verified email, which only the provider's own rules may grant (Entra's
            # xms_edov): the generic rules believed any email_verified, the nOAuth hole.
            return dataclasses.replace(_generic(claims, issuer), email_verified=False)
    return _generic(claims, issuer)
