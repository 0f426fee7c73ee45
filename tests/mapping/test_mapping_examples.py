"""Each example mapping in examples/mappings/, applied to its provider's real token
shapes (the samples the provider tests use), with the identity derived by the real
provider profile; and two end-to-end runs through a Bridge and a mock issuer."""

from __future__ import annotations

from typing import Any

from _mapping_helpers import User, example, outcome, verified

from federation.testing import FrozenClock, MockIdP

NOW = 1_800_000_000

# -- Keycloak ---------------------------------------------------------------------------------

KEYCLOAK = {
    "provider": "keycloak",
    "base_url": "https://sso.example.com",
    "realm": "OSSS",
    "client_ids": ["osss-client", "reports.example.org"],
}


def keycloak_id(**overrides: Any) -> dict[str, Any]:
    """The OSSS Keycloak 25 id token (tests/providers/test_keycloak.py), on an https host."""
    claims: dict[str, Any] = {
        "exp": NOW + 300,
        "iat": NOW,
        "auth_time": NOW,
        "jti": "179a04e8-6a41-41bb-ab20-14d55a8518af",
        "iss": "https://sso.example.com/realms/OSSS",
        "aud": "osss-client",
        "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8",
        "typ": "ID",
        "azp": "osss-client",
        "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
        "nonce": "n-0S6_WzA2Mj",
        "realm_access": {"roles": ["uma_authorization"]},
        "resource_access": {"osss-client": {"roles": ["user"]}, "account": {"roles": ["view-profile"]}},
        "email_verified": True,
        "preferred_username": "teacher@example.org",
        "given_name": "Pat",
        "family_name": "Teacher",
        "email": "teacher@example.org",
    }
    claims.update(overrides)
    return claims


def test_keycloak_example() -> None:
    m = example("keycloak")
    result = m.apply(verified(KEYCLOAK, keycloak_id()))
    assert result.allowed
    assert dict(result.attributes) == {
        "email": "teacher@example.org",
        "username": "teacher@example.org",
        "display_name": "Pat Teacher",
        "first_name": "Pat",
        "last_name": "Teacher",
    }
    assert result.roles == {"member", "teacher"}


def test_keycloak_example_realm_admin_dotted_client_groups_and_sync() -> None:
    claims = keycloak_id(
        realm_access={"roles": ["realm-admin", "uma_authorization"]},
        resource_access={"osss-client": {"roles": []}, "reports.example.org": {"roles": ["viewer"]}},
        groups=["/staff", "/Parents", "/other"],
        name="Pat T.",
    )
    user = User({"first_name": "Patricia", "username": "pat"}, frozenset({"owner", "teacher", "member"}))
    result = example("keycloak").apply(verified(KEYCLOAK, claims), user)
    assert result.roles == {"member", "admin", "report-viewer", "staff", "parents", "owner"}
    assert result.revoked == {"teacher"}  # authoritative: the client role is gone in Keycloak
    assert result.granted == {"admin", "report-viewer", "staff", "parents"}
    assert dict(result.attributes) == {
        "email": "teacher@example.org",
        "display_name": "Pat T.",
        "last_name": "Teacher",
    }
    assert outcome(result, "roles.protected") == [("kept", "owner")]


def test_keycloak_example_denies_unverified_email() -> None:
    result = example("keycloak").apply(verified(KEYCLOAK, keycloak_id(email_verified=False)))
    assert result.denied == "unverified_email"


# -- Cognito ----------------------------------------------------------------------------------

POOL_ISSUER = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example"
COGNITO = {
    "provider": "cognito",
    "region": "us-west-2",
    "user_pool_id": "us-west-2_example",
    "client_ids": ["xxxxxxxxxxxxexample"],
}
COGNITO_ID: dict[str, Any] = {
    "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "cognito:groups": ["test-group-a", "test-group-b", "test-group-c"],
    "email_verified": True,
    "cognito:preferred_role": "arn:aws:iam::111122223333:role/my-test-role",
    "iss": POOL_ISSUER,
    "cognito:username": "my-test-user",
    "middle_name": "Jane",
    "nonce": "abcdefg",
    "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "cognito:roles": ["arn:aws:iam::111122223333:role/my-test-role"],
    "aud": "xxxxxxxxxxxxexample",
    "event_id": "64f513be-32db-42b0-b78e-b02127b4f463",
    "token_use": "id",
    "auth_time": NOW - 60,
    "exp": NOW + 3600,
    "iat": NOW,
    "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "email": "my-test-user@example.com",
}  # AWS's "Using the ID token" sample (tests/providers/test_cognito.py)


def test_cognito_example() -> None:
    result = example("cognito").apply(verified(COGNITO, COGNITO_ID))
    assert result.allowed
    assert dict(result.attributes) == {
        "email": "my-test-user@example.com",
        "username": "my-test-user",
        "display_name": "my-test-user",
        "middle_name": "Jane",
        "aws_role": "arn:aws:iam::111122223333:role/my-test-role",
    }
    assert result.roles == {"member", "tester", "group-a", "group-b", "group-c"}


def test_cognito_example_admins_string_booleans_and_access_tokens() -> None:
    claims = {**COGNITO_ID, "cognito:groups": "Admins", "email_verified": "true", "custom:department": "R&D"}
    result = example("cognito").apply(verified(COGNITO, claims))
    assert result.allowed and result.roles == {"member", "admin"}
    assert result.attributes["department"] == "R&D"
    access = {
        "sub": COGNITO_ID["sub"],
        "cognito:groups": ["testgroup"],
        "iss": POOL_ISSUER,
        "version": 2,
        "client_id": "xxxxxxxxxxxxexample",
        "token_use": "access",
        "scope": "openid email",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW,
        "jti": "j",
        "username": "my-test-user",
    }
    result = example("cognito").apply(verified(COGNITO, access))
    assert result.denied == "unverified_email"  # access tokens carry no email


# -- Entra ID (Azure AD) ---------------------------------------------------------------------

HOME = "fa15d692-e9c7-4460-a743-29f2956fd429"
PARTNER = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE = {
    "provider": "azure_ad",
    "tenant": "organizations",
    "allowed_tenants": [HOME, PARTNER],
    "audiences": ["b14a7505-96e9-4927-91e8-0601d0fc9caa", "6e74172b-be56-4843-9ff4-e66a39bb12e3"],
    "versions": ["1.0", "2.0"],
}
AZURE_V1_ID: dict[str, Any] = {
    "aud": "b14a7505-96e9-4927-91e8-0601d0fc9caa",
    "iss": f"https://sts.windows.net/{HOME}/",
    "amr": ["rsa"],
    "email": "abeli@microsoft.com",
    "family_name": "Lincoln",
    "given_name": "Abe",
    "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
    "name": "abeli",
    "nonce": "123523",
    "oid": "05833b6b-aa1d-42d4-9ec0-1b2bb9194438",
    "sub": "5_J9rSss8-jvt_Icu6ueRNL8xXb8LF4Fsg_KooC2RJQ",
    "tid": HOME,
    "unique_name": "AbeLi@microsoft.com",
    "ver": "1.0",
    "iat": NOW,
    "exp": NOW + 3600,
}  # Microsoft's v1 id token sample (tests/providers/_azure_helpers.py)
AZURE_V2_ACCESS: dict[str, Any] = {
    "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "iss": f"https://login.microsoftonline.com/{PARTNER}/v2.0",
    "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "azpacr": "0",
    "name": "Abe Lincoln",
    "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
    "preferred_username": "abeli@microsoft.com",
    "scp": "access_as_user",
    "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
    "tid": PARTNER,
    "ver": "2.0",
    "iat": NOW,
    "exp": NOW + 3600,
}  # Microsoft's v2 access token sample


def test_azure_ad_example_home_tenant_admin_and_unverified_email() -> None:
    claims = {**AZURE_V1_ID, "roles": ["Task.Admin"], "groups": ["5a6a5a2c-1d4e-4b5f-9c3a-2f1e0d9c8b7a"]}
    result = example("azure_ad").apply(verified(AZURE, claims))
    assert result.allowed
    # nOAuth: the email is not verified (no xms_edov), so it is not mapped.
    assert dict(result.attributes) == {
        "username": "abeli@microsoft.com",
        "display_name": "abeli",
        "tenant_id": HOME,
    }
    assert outcome(result, "attributes.email") == [("missing", "when: $email_verified does not equal true")]
    assert result.roles == {"member", "admin", "finance"}
    verified_email = example("azure_ad").apply(verified(AZURE, {**claims, "xms_edov": True}))
    assert verified_email.attributes["email"] == "abeli@microsoft.com"


def test_azure_ad_example_partner_tenant_overage_and_foreign_tenants() -> None:
    claims = {**AZURE_V2_ACCESS, "roles": ["Task.Admin", "Task.Write"]}
    result = example("azure_ad").apply(verified(AZURE, claims))
    assert result.allowed and result.roles == {
        "member",
        "writer",
    }  # Task.Admin counts in the home tenant only
    assert result.attributes["username"] == "abeli@microsoft.com"
    overage = {
        **claims,
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}},
    }
    assert example("azure_ad").apply(verified(AZURE, overage)).denied == "groups_overage"
    other = "11111111-2222-3333-4444-555555555555"
    foreign = {**claims, "tid": other, "iss": f"https://login.microsoftonline.com/{other}/v2.0"}
    entry = {**AZURE, "allowed_tenants": [HOME, PARTNER, other]}
    assert example("azure_ad").apply(verified(entry, foreign)).denied == "tenant_not_allowed"


# -- Okta ------------------------------------------------------------------------------------

OKTA_ID: dict[str, Any] = {
    "sub": "00uixa271s6x7qt8I0h7",
    "ver": 1,
    "iss": "https://dev-123.okta.com",
    "aud": "0oaoiuhhch8VRtBnC0h7",
    "jti": "ID.ewMNfSvcpuqyS93OgVeCN3F2LseqROkyYjz7DNb9yhs",
    "amr": ["pwd", "mfa", "kba"],
    "idp": "00oixa26ycdNcX0VT0h7",
    "nonce": "UBGW",
    "auth_time": NOW - 60,
    "groups": ["Everyone", "IT"],
    "iat": NOW,
    "exp": NOW + 3600,
    "name": "Joe User",
    "email": "Joe.User@example.com",
    "email_verified": True,
    "preferred_username": "joe.user@example.com",
}  # Okta's id token with a groups claim (tests/providers/test_okta.py), plus profile claims


def test_okta_example_id_token() -> None:
    entry = {"provider": "okta", "domain": "dev-123.okta.com", "client_ids": ["0oaoiuhhch8VRtBnC0h7"]}
    result = example("okta").apply(verified(entry, OKTA_ID))
    assert dict(result.attributes) == {
        "username": "joe.user@example.com",
        "email": "joe.user@example.com",
        "display_name": "Joe User",
        "okta_user_id": "00uixa271s6x7qt8I0h7",
    }
    assert result.roles == {"member", "it"}
    admin = example("okta").apply(
        verified(entry, {**OKTA_ID, "groups": ["Okta-Admins"]}), User(roles=frozenset({"x"}))
    )
    assert admin.roles == {"member", "admin", "x"}  # additive: x stays


def test_okta_example_access_token_with_a_custom_groups_claim() -> None:
    entry = {
        "provider": "okta",
        "domain": "dev-123.okta.com",
        "authorization_server": "default",
        "client_ids": ["0oaipnnzumvqt5tiu1d6"],
        "audiences": ["https://dev-123.okta.com"],
        "groups_claim": "GroupsClaim",
    }
    access = {
        "ver": 1,
        "jti": "AT.BYBJNkCefidrwo0VtGLHIZCYfSAeOyB0tVPTB6eqFss",
        "iss": "https://dev-123.okta.com/oauth2/default",
        "aud": "https://dev-123.okta.com",
        "cid": "0oaipnnzumvqt5tiu1d6",
        "uid": "00uixa271s6x7qt8I0h7",
        "scp": ["openid"],
        "sub": "joe.user@example.com",
        "GroupsClaim": ["Midwest Sales", "Everyone"],
        "iat": NOW,
        "exp": NOW + 3600,
    }
    result = example("okta").apply(verified(entry, access))
    assert result.roles == {"member", "sales"}
    assert dict(result.attributes) == {
        "username": "joe.user@example.com",
        "display_name": "joe.user@example.com",
        "okta_user_id": "00uixa271s6x7qt8I0h7",
    }


# -- Google ----------------------------------------------------------------------------------

GOOGLE = {
    "provider": "google",
    "client_ids": ["314159265-pi.apps.googleusercontent.com", "1234987819200.apps.googleusercontent.com"],
}
SIGN_IN_WITH_GOOGLE: dict[str, Any] = {
    "iss": "https://accounts.google.com",
    "nbf": NOW - 60,
    "aud": "314159265-pi.apps.googleusercontent.com",
    "sub": "3141592653589793238",
    "hd": "gmail.com",
    "email": "elisa.g.beckett@gmail.com",
    "email_verified": True,
    "azp": "314159265-pi.apps.googleusercontent.com",
    "name": "Elisa Beckett",
    "picture": "https://lh3.googleusercontent.com/a-/e2718281828459045235360uler",
    "given_name": "Elisa",
    "family_name": "Beckett",
    "iat": NOW,
    "exp": NOW + 3600,
    "jti": "abc161803398874def",
}  # the Sign In With Google reference credential (tests/providers/test_google.py)
LEGACY_GOOGLE: dict[str, Any] = {
    "iss": "accounts.google.com",
    "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
    "email_verified": "true",
    "sub": "10769150350006150715113082367",
    "azp": "1234987819200.apps.googleusercontent.com",
    "email": "jsmith@example.com",
    "aud": "1234987819200.apps.googleusercontent.com",
    "iat": NOW,
    "exp": NOW + 3900,
    "nonce": "0394852-3190485-2490358",
    "hd": "example.com",
}  # the legacy OIDC sample: string email_verified, Workspace domain example.com


def test_google_example() -> None:
    result = example("google").apply(verified(GOOGLE, SIGN_IN_WITH_GOOGLE))
    assert dict(result.attributes) == {
        "email": "elisa.g.beckett@gmail.com",
        "display_name": "Elisa Beckett",
        "first_name": "Elisa",
        "last_name": "Beckett",
        "avatar_url": "https://lh3.googleusercontent.com/a-/e2718281828459045235360uler",
        "username": "elisa.g.beckett",
    }
    assert result.roles == {"member"}
    workspace = example("google").apply(verified(GOOGLE, LEGACY_GOOGLE))
    assert workspace.allowed and workspace.roles == {"member", "staff"}
    assert workspace.attributes["display_name"] == "jsmith@example.com"  # no name claims: the email


def test_google_example_grants_on_hd_not_on_the_email_suffix() -> None:
    consumer = {**LEGACY_GOOGLE, "hd": None, "email_verified": True}
    consumer = {k: v for k, v in consumer.items() if v is not None}
    result = example("google").apply(verified(GOOGLE, consumer))
    assert result.denied == "unverified_email"  # Google does not vouch for a non-Gmail consumer address


# -- Firebase --------------------------------------------------------------------------------

FIREBASE = {"provider": "firebase", "project_id": "apizero"}


def firebase_user(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "name": "Kashif Shaikh",
        "picture": "https://lh3.googleusercontent.com/a-/AOh14GjQhMB_b7Gt9gxG24OMM6REDhitKbYqtLpGdSnLo-w",
        "iss": "https://securetoken.google.com/apizero",
        "aud": "apizero",
        "auth_time": NOW - 1479,
        "user_id": "YX4oa0l2AXh4cQE4yodfchnYma02",
        "sub": "YX4oa0l2AXh4cQE4yodfchnYma02",
        "iat": NOW,
        "exp": NOW + 3600,
        "email": "kashifshaikh2.0@gmail.com",
        "email_verified": True,
        "firebase": {
            "identities": {"google.com": ["102769505389790198629"], "email": ["kashifshaikh2.0@gmail.com"]},
            "sign_in_provider": "google.com",
        },
    }  # tests/providers/test_firebase.py google_user()
    claims.update(overrides)
    return claims


def test_firebase_example() -> None:
    result = example("firebase").apply(verified(FIREBASE, firebase_user(admin=True, role="editor")))
    assert result.allowed
    assert dict(result.attributes) == {
        "email": "kashifshaikh2.0@gmail.com",
        "display_name": "Kashif Shaikh",
        "avatar_url": "https://lh3.googleusercontent.com/a-/AOh14GjQhMB_b7Gt9gxG24OMM6REDhitKbYqtLpGdSnLo-w",
        "sign_in_provider": "google.com",
        "tenant": "default",
    }
    assert result.roles == {"member", "admin", "editor"}
    result = example("firebase").apply(verified(FIREBASE, firebase_user(admin="true", role="owner")))
    assert result.roles == {"member"}  # admin must be JSON true; role outside the allow-list


def test_firebase_example_password_anonymous_and_tenants() -> None:
    password = firebase_user(
        email_verified=False, firebase={"sign_in_provider": "password", "tenant": "acmecorp-xgzvg"}
    )
    assert example("firebase").apply(verified(FIREBASE, password)).denied == "unverified_email"
    password["email_verified"] = True
    result = example("firebase").apply(verified(FIREBASE, password))
    assert result.attributes["tenant"] == "acmecorp-xgzvg"
    anonymous = firebase_user(firebase={"sign_in_provider": "anonymous"}, email=None, name=None)
    anonymous = {k: v for k, v in anonymous.items() if v is not None}
    assert example("firebase").apply(verified(FIREBASE, anonymous)).denied == "anonymous_not_allowed"


# -- generic OIDC ----------------------------------------------------------------------------

OIDC = {
    "provider": "oidc",
    "issuer": "https://login.example.com/",
    "audiences": ["my-client"],
    "jwks_uri": "https://login.example.com/.well-known/jwks.json",
}
AUTH0: dict[str, Any] = {
    "iss": "https://login.example.com/",
    "sub": "auth0|64f1c0ffee",
    "aud": "my-client",
    "iat": NOW,
    "exp": NOW + 3600,
    "nickname": "ada",
    "name": "Ada Lovelace",
    "email": "Ada@Example.com",
    "email_verified": True,
    "https://example.com/roles": ["editor", "admin", "unknown"],
    "https://example.com/org_id": "org_123",
}


def test_oidc_example() -> None:
    result = example("oidc").apply(verified(OIDC, AUTH0))
    assert dict(result.attributes) == {
        "email": "ada@example.com",
        "username": "ada",
        "display_name": "Ada Lovelace",
        "org_id": "org_123",
        "locale": "en",
    }
    assert result.roles == {"member", "editor", "admin"}


def test_oidc_example_partner_issuer_section() -> None:
    partner = {
        "provider": "oidc",
        "issuer": "https://partner.example.net/",
        "audiences": ["my-client"],
        "jwks_uri": "https://partner.example.net/jwks",
    }
    claims = {
        **AUTH0,
        "iss": "https://partner.example.net/",
        "groups": ["partners"],
        "https://partner.example.net/tenant": "acme",
    }
    result = example("oidc").apply(verified(partner, claims))
    assert result.roles == {"member", "editor", "partner"}  # no admin: that rule is scoped to our issuer
    assert result.attributes["org_id"] == "partner-acme"


# -- end to end: a mock issuer, a Bridge, the mapping ------------------------------------------


def test_end_to_end_generic_oidc() -> None:
    idp = MockIdP(issuer="https://login.example.com/", audience="my-client", clock=FrozenClock(NOW))
    with idp.bridge() as bridge:
        token = idp.mint({k: v for k, v in AUTH0.items() if k not in ("iat", "exp")})
        result = example("oidc").apply(bridge.verify(token))
    idp.close()
    assert result.allowed and result.roles == {"member", "editor", "admin"}
    assert result.attributes["email"] == "ada@example.com"


def test_end_to_end_cognito() -> None:
    clock = FrozenClock(NOW)
    pool = MockIdP(
        issuer=POOL_ISSUER,
        audience="xxxxxxxxxxxxexample",
        jwks_path="/us-west-2_example/.well-known/jwks.json",
        clock=clock,
    )
    with pool.bridge(config={"issuers": [COGNITO]}) as bridge:
        token = pool.mint({k: v for k, v in COGNITO_ID.items() if k not in ("iat", "exp")})
        vt = bridge.verify(token)
    pool.close()
    result = example("cognito").apply(vt, User({"email": "my-test-user@example.com"}, frozenset({"old"})))
    assert vt.provider == "cognito" and result.allowed
    assert result.roles == {"member", "tester", "group-a", "group-b", "group-c"}
    assert result.revoked == {"old"}
    assert "email" not in result.attributes  # unchanged


# -- the documentation's complete examples load --------------------------------------------


def test_the_complete_mappings_in_the_docs_load() -> None:
    import re
    from pathlib import Path

    from federation.mapping import Mapping

    text = (Path(__file__).resolve().parents[2] / "docs" / "mapping.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if re.search(r"^version: 1$", b, re.M)]
    assert len(blocks) >= 2
    for block in blocks:
        Mapping.from_yaml(block, file="docs/mapping.md")
