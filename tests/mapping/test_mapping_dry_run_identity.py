"""Dry runs: the normalised view (``$``-names) built from raw claims, by each provider's
own rules with stand-in settings, by a configured profile, or by generic OIDC rules."""

from __future__ import annotations

from typing import Any

from _mapping_helpers import mapping, profile

from federation.mapping._identity import dry_run_identity, dry_run_token_type

VIEW = mapping(
    """
version: 1
attributes:
  email:    { from: $email }
  verified: { from: $email_verified }
  username: { from: $username }
  groups:   { from: $groups }
  roles:    { from: $roles }
  overage:  { from: $groups_overage }
  kind:     { from: $token_type }
  who:      { from: "{$provider} {$issuer} {$subject}" }
"""
)


def view(claims: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return dict(VIEW.apply_claims(claims, **kw).attributes)


def test_generic_oidc() -> None:
    assert view(
        {"iss": "https://idp", "sub": "u", "email": "a@b", "email_verified": "true", "groups": "g"}
    ) == {
        "email": "a@b",
        "verified": False,  # strict: the string "true" is not true for generic OIDC
        "groups": ["g"],
        "overage": False,
        "kind": "id",
        "who": "oidc https://idp u",
    }


def test_cognito_accepts_string_booleans_and_reads_its_own_claims() -> None:
    claims = {
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
        "sub": "u",
        "token_use": "access",
        "username": "ada",
        "email": "a@b",
        "email_verified": "true",
        "cognito:groups": ["G"],
        "client_id": "c",
        "scope": "openid",
    }
    result = view(claims, provider="cognito")
    assert result["verified"] is True and result["username"] == "ada" and result["groups"] == ["G"]
    assert result["kind"] == "access"


def test_keycloak_stand_in_lists_every_clients_roles() -> None:
    claims = {
        "iss": "https://kc/realms/r",
        "sub": "u",
        "typ": "ID",
        "realm_access": {"roles": ["r1"]},
        "resource_access": {"app": {"roles": ["x"]}, "my.api": {"roles": ["y"]}},
    }
    assert view(claims, provider="keycloak")["roles"] == ["r1", "app:x", "my.api:y"]


def test_azure_email_is_verified_only_with_xms_edov_and_overage_is_flagged() -> None:
    claims = {
        "iss": "https://login.microsoftonline.com/t/v2.0",
        "sub": "s",
        "oid": "o",
        "tid": "t",
        "email": "a@b",
        "preferred_username": "a@b",
        "groups": ["g1"],
    }
    assert view(claims, provider="azure_ad")["verified"] is False
    assert view({**claims, "xms_edov": True}, provider="azure_ad")["verified"] is True
    over = view({**claims, "_claim_names": {"groups": "src1"}}, provider="azure_ad")
    assert over["overage"] is True and "groups" not in over
    b2c = view({**claims, "emails": ["c@d"], "email": None}, provider="azure_ad_b2c")
    assert b2c["email"] == "c@d" and b2c["verified"] is False


def test_google_vouches_for_gmail_and_workspace_only() -> None:
    base = {"iss": "https://accounts.google.com", "sub": "1", "email_verified": True}
    assert view({**base, "email": "x@gmail.com"}, provider="google")["verified"] is True
    assert view({**base, "email": "x@corp.com", "hd": "corp.com"}, provider="google")["verified"] is True
    assert view({**base, "email": "x@corp.com"}, provider="google")["verified"] is False


def test_okta_user_access_token_username_is_the_login() -> None:
    claims = {
        "iss": "https://dev-1.okta.com/oauth2/default",
        "sub": "joe@example.com",
        "uid": "00u1",
        "cid": "c",
        "scp": ["openid"],
        "groups": ["IT"],
    }
    result = view(claims, provider="okta")
    assert (
        result["username"] == "joe@example.com" and result["groups"] == ["IT"] and result["kind"] == "access"
    )


def test_a_configured_profile_is_used_as_is() -> None:
    entry = {
        "provider": "okta",
        "domain": "dev-1.okta.com",
        "authorization_server": "default",
        "client_ids": ["c"],
        "audiences": ["api"],
        "groups_claim": "Custom",
    }
    claims = {
        "iss": "https://dev-1.okta.com/oauth2/default",
        "sub": "joe",
        "uid": "00u1",
        "cid": "c",
        "scp": ["openid"],
        "Custom": ["Sales"],
        "groups": ["ignored"],
    }
    assert view(claims, profile=profile(entry))["groups"] == ["Sales"]


def test_without_sub_the_generic_view_is_used_and_never_verifies_an_email() -> None:
    # Keycloak's own identity() needs 'sub'; the dry run falls back instead of failing, but
    # only the provider's own rules may vouch for an email.
    assert view({"email": "a@b", "email_verified": True}, provider="keycloak")["verified"] is False
    # Entra without 'oid': the generic rules believed email_verified (the nOAuth hole that
    # Entra's own rules close with xms_edov), so a dry run said the opposite of production.
    entra = {"iss": "https://login.microsoftonline.com/t/v2.0", "sub": "s", "tid": "t", "ver": "2.0"}
    assert view({**entra, "email": "a@b", "email_verified": True}, provider="azure_ad")["verified"] is False
    ident = dry_run_identity({"sub": 5}, "oidc", "iss", "id")
    assert ident.key == ("iss", "5")  # the generic profile's own rule: str(sub)
    assert dry_run_identity({}, "oidc", "iss", "id").key == ("iss", "")  # no sub at all: the fallback


def test_token_type_guess() -> None:
    keycloak = profile({"provider": "keycloak", "base_url": "https://kc", "realm": "r", "client_ids": ["a"]})
    assert dry_run_token_type({"scope": "openid"}) == "access"
    assert dry_run_token_type({}) == "id"
    assert dry_run_token_type({"typ": "Bearer"}, keycloak) == "access"
    assert dry_run_token_type({"typ": "Refresh"}, keycloak) == "id"  # a kind the profile refuses: best effort
