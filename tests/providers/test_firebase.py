"""The Firebase profile: project binding by exact issuer and audience (the keys
are shared by every project), Google's x509 certificate map and its
Cache-Control, RS256 and ``kid`` required, the ``auth_time``/``iat``/``sub``
rules, tenant and sign-in-provider allow-lists, and the identity.

Tokens are real decoded Firebase ID tokens (providers.md §6.8, project
``apizero``: email/password, google.com, and a tenant user), re-signed with a
test key served as a self-signed certificate in a ``{kid: PEM}`` map at
Google's URL, and re-dated to the frozen clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _kgf_helpers import KeyServer, Mode, pem_map, rejects, run
from federation.providers.firebase import FIREBASE_CERTS_URL, FirebaseConfig

from federation import Bridge
from federation.errors import (
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidClaim,
    IssuedInFuture,
    TokenExpired,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP

NOW = 1_800_000_000
ISSUER = "https://securetoken.google.com/apizero"
ENTRY: dict[str, Any] = {"provider": "firebase", "project_id": "apizero"}
CUSTOM_TOKEN_AUD = "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"


def password_user(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "apizero",
        "auth_time": NOW,
        "user_id": "6isO78SMpzWZnwCNNXKEOQMAhZ43",
        "sub": "6isO78SMpzWZnwCNNXKEOQMAhZ43",
        "iat": NOW,
        "exp": NOW + 3600,
        "email": "kashifshaikh2.0@gmail.com",
        "email_verified": False,
        "firebase": {"identities": {"email": ["kashifshaikh2.0@gmail.com"]}, "sign_in_provider": "password"},
        "jti": None,
    }
    claims.update(overrides)
    return claims


def google_user(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "name": "Kashif Shaikh",
        "picture": "https://lh3.googleusercontent.com/a-/AOh14GjQhMB_b7Gt9gxG24OMM6REDhitKbYqtLpGdSnLo-w",
        "iss": ISSUER,
        "aud": "apizero",
        "auth_time": NOW - 1479,  # signed in earlier; this token is a refresh
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
        "jti": None,
    }
    claims.update(overrides)
    return claims


def tenant_user(**overrides: Any) -> dict[str, Any]:
    claims = password_user(
        user_id="7ThdFTH44sQIluA55TD7mRbO5rt1",
        sub="7ThdFTH44sQIluA55TD7mRbO5rt1",
        firebase={
            "identities": {"email": ["kashifshaikh2.0@gmail.com"]},
            "sign_in_provider": "password",
            "tenant": "acmecorp-xgzvg",
        },
    )
    claims.update(overrides)
    return claims


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def idp(clock: FrozenClock) -> MockIdP:
    """Signs like securetoken@system.gserviceaccount.com: one key set for every project."""
    return MockIdP(issuer=ISSUER, audience="apizero", clock=clock)


@pytest.fixture(scope="module")
def server(idp: MockIdP) -> KeyServer:
    certs = pem_map(idp.keys, NOW)
    server = KeyServer()
    server.add(FIREBASE_CERTS_URL, lambda: certs, max_age=20000)
    return server


@pytest.fixture(scope="module")
def bridges(server: KeyServer, clock: FrozenClock) -> Iterator[dict[str, Bridge]]:
    built = {
        "project": server.bridge({"issuers": [ENTRY]}, clock),
        "tenants": server.bridge({"issuers": [{**ENTRY, "tenants": ["acmecorp-xgzvg", "tenant-a"]}]}, clock),
        "methods": server.bridge(
            {"issuers": [{**ENTRY, "sign_in_providers": ["password", "google.com"]}]}, clock
        ),
    }
    yield built
    for bridge in built.values():
        bridge.close()


@pytest.fixture(scope="module")
def bridge(bridges: dict[str, Bridge]) -> Bridge:
    return bridges["project"]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    mode: Mode = request.param
    return mode


# -- accepted ----------------------------------------------------------------------------------


def test_email_password_user(bridge: Bridge, idp: MockIdP, mode: Mode) -> None:
    vt = run(bridge, idp.mint(password_user()), mode)
    assert (vt.provider, vt.token_type, vt.issuer) == ("firebase", "id", ISSUER)
    assert vt.identity_key == (ISSUER, "6isO78SMpzWZnwCNNXKEOQMAhZ43")
    assert (vt.email, vt.email_verified) == ("kashifshaikh2.0@gmail.com", False)
    assert (vt.username, vt.groups, vt.roles) == (None, (), ())


def test_google_sign_in_user(bridge: Bridge, idp: MockIdP, mode: Mode) -> None:
    vt = run(bridge, idp.mint(google_user()), mode)
    assert vt.identity_key == (ISSUER, "YX4oa0l2AXh4cQE4yodfchnYma02")
    assert vt.email_verified is True
    assert vt.claims["firebase"]["sign_in_provider"] == "google.com"


def test_tenant_user_is_keyed_within_its_tenant(bridges: dict[str, Bridge], idp: MockIdP, mode: Mode) -> None:
    vt = run(bridges["tenants"], idp.mint(tenant_user()), mode)
    assert vt.identity_key == (ISSUER + "/tenants/acmecorp-xgzvg", "7ThdFTH44sQIluA55TD7mRbO5rt1")


def test_sign_in_provider_allow_list_accepts_listed(bridges: dict[str, Bridge], idp: MockIdP) -> None:
    assert bridges["methods"].verify(idp.mint(password_user())).subject
    assert bridges["methods"].verify(idp.mint(google_user())).subject


def test_strict_email_verified_and_phone_users(bridge: Bridge, idp: MockIdP) -> None:
    vt = bridge.verify(idp.mint(password_user(email_verified="true")))
    assert vt.email_verified is False
    phone = password_user(email=None, email_verified=None, phone_number="+15555550100")
    phone["firebase"] = {"identities": {"phone": ["+15555550100"]}, "sign_in_provider": "phone"}
    vt = bridge.verify(idp.mint(phone))
    assert (vt.email, vt.email_verified) == (None, False)


def test_subject_of_128_characters_is_accepted(bridge: Bridge, idp: MockIdP) -> None:
    assert bridge.verify(idp.mint(password_user(sub="u" * 128))).subject == "u" * 128


# -- rejected: project binding (the keys are shared by every project) ---------------------------


def test_another_projects_token_is_refused(bridge: Bridge, idp: MockIdP, mode: Mode) -> None:
    token = idp.mint(password_user(iss="https://securetoken.google.com/other-proj", aud="other-proj"))
    rejects(bridge, token, UntrustedIssuer, "untrusted_issuer", mode)


@pytest.mark.parametrize("aud", ["other-proj", ["apizero", "other-proj"], CUSTOM_TOKEN_AUD, None])
def test_audience_must_be_the_project(bridge: Bridge, idp: MockIdP, aud: object, mode: Mode) -> None:
    rejects(bridge, idp.mint(password_user(aud=aud)), InvalidAudience, "invalid_audience", mode)


def test_custom_token_is_refused(bridge: Bridge, idp: MockIdP) -> None:
    custom = {
        "iss": "firebase-adminsdk-abcde@apizero.iam.gserviceaccount.com",
        "sub": "firebase-adminsdk-abcde@apizero.iam.gserviceaccount.com",
        "aud": CUSTOM_TOKEN_AUD,
        "uid": "some-uid",
        "iat": NOW,
        "exp": NOW + 3600,
    }
    rejects(bridge, idp.mint(custom), UntrustedIssuer, "untrusted_issuer")


@pytest.mark.parametrize(
    "iss", ["https://securetoken.google.com/apizero/", "http://securetoken.google.com/apizero", "apizero"]
)
def test_issuer_is_exact(bridge: Bridge, idp: MockIdP, iss: str) -> None:
    rejects(bridge, idp.mint(password_user(iss=iss)), UntrustedIssuer, "untrusted_issuer")


# -- rejected: header --------------------------------------------------------------------------


def test_kid_is_required(bridge: Bridge, idp: MockIdP, mode: Mode) -> None:
    rejects(bridge, idp.mint(password_user(), headers={"kid": None}), UnknownKey, "unknown_key", mode)


def test_unknown_kid(bridge: Bridge, idp: MockIdP) -> None:
    rejects(bridge, idp.mint(password_user(), kid="not-a-current-key"), UnknownKey, "unknown_key")


@pytest.mark.parametrize("alg", ["RS384", "PS256", "ES256"])
def test_rs256_only(bridge: Bridge, idp: MockIdP, alg: str) -> None:
    rejects(bridge, idp.mint(password_user(), alg=alg), DisallowedAlgorithm, "disallowed_algorithm")


def test_other_jwt_kinds_are_refused(bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(password_user(), headers={"typ": "at+jwt"})
    rejects(bridge, token, WrongTokenType, "wrong_token_type")


# -- rejected: claims --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "claim"),
    [
        ({"auth_time": None}, "auth_time"),
        ({"auth_time": str(NOW)}, "auth_time"),
        ({"auth_time": True}, "auth_time"),
        ({"auth_time": NOW + 1}, "auth_time"),  # after iat: not in the past
        ({"auth_time": NOW + 30, "iat": NOW + 30}, None),  # within leeway of now, and not after iat
        ({"iat": None}, "iat"),
        ({"sub": ""}, "sub"),
        ({"sub": "u" * 129}, "sub"),
        ({"sub": None}, "sub"),
        ({"firebase": "password"}, "firebase"),
    ],
)
def test_claim_rules(bridge: Bridge, idp: MockIdP, overrides: dict[str, Any], claim: str | None) -> None:
    token = idp.mint(password_user(**overrides))
    if claim is None:
        assert bridge.verify(token).subject
        return
    error = rejects(bridge, token, InvalidClaim, "invalid_claim")
    assert error.claim == claim


def test_auth_time_in_the_future_async(bridge: Bridge, idp: MockIdP) -> None:
    error = rejects(
        bridge, idp.mint(password_user(auth_time=NOW + 600)), InvalidClaim, "invalid_claim", "async"
    )
    assert error.claim == "auth_time"


def test_iat_in_the_future_and_expiry(bridge: Bridge, idp: MockIdP) -> None:
    future = password_user(iat=NOW + 600, auth_time=NOW + 600, exp=NOW + 4200)
    rejects(bridge, idp.mint(future), IssuedInFuture, "issued_in_future")
    rejects(
        bridge,
        idp.mint(password_user(iat=NOW - 7200, auth_time=NOW - 7200, exp=NOW - 3600)),
        TokenExpired,
        "expired",
    )


# -- rejected: tenants and sign-in providers --------------------------------------------------------


def test_tenant_token_needs_a_tenant_allow_list(bridge: Bridge, idp: MockIdP, mode: Mode) -> None:
    error = rejects(bridge, idp.mint(tenant_user()), InvalidClaim, "tenant_not_allowed", mode)
    assert error.claim == "firebase.tenant"


@pytest.mark.parametrize("tenant", [None, "tenant-b", ["tenant-a"]])
def test_tenant_allow_list(bridges: dict[str, Bridge], idp: MockIdP, tenant: object) -> None:
    claims = tenant_user()
    claims["firebase"] = {**claims["firebase"], "tenant": tenant}
    if tenant is None:
        del claims["firebase"]["tenant"]  # a project-level user
    rejects(bridges["tenants"], idp.mint(claims), InvalidClaim, "tenant_not_allowed")


@pytest.mark.parametrize(
    "firebase",
    [
        {"sign_in_provider": "anonymous"},
        {"sign_in_provider": "custom"},
        {"sign_in_provider": "Password"},
        {"identities": {}},
        None,
    ],
)
def test_sign_in_provider_allow_list(
    bridges: dict[str, Bridge], idp: MockIdP, firebase: dict[str, Any] | None, mode: Mode
) -> None:
    token = idp.mint(password_user(firebase=firebase))
    error = rejects(bridges["methods"], token, InvalidClaim, "sign_in_provider_not_allowed", mode)
    assert error.claim == "firebase.sign_in_provider"


# -- keys: the certificate map and its Cache-Control -------------------------------------------------


def test_certificate_map_max_age_is_honoured() -> None:
    clock = FrozenClock(NOW)
    idp = MockIdP(issuer=ISSUER, audience="apizero", clock=clock)
    certs = pem_map(idp.keys, NOW)
    server = KeyServer()
    server.add(FIREBASE_CERTS_URL, lambda: certs, max_age=3600)
    with server.bridge({"issuers": [ENTRY]}, clock) as bridge:

        def fresh_token() -> str:
            return idp.mint(password_user(auth_time=int(clock()), iat=int(clock()), exp=int(clock()) + 3600))

        bridge.verify(fresh_token())
        assert server.count(FIREBASE_CERTS_URL) == 1
        clock.advance(3000)  # past the default ttl (600 s), within max-age
        bridge.verify(fresh_token())
        assert server.count(FIREBASE_CERTS_URL) == 1
        clock.advance(700)  # past max-age
        bridge.verify(fresh_token())
        assert server.count(FIREBASE_CERTS_URL) == 2


def test_rotated_certificate_is_fetched_on_unknown_kid() -> None:
    clock = FrozenClock(NOW)
    idp = MockIdP(issuer=ISSUER, audience="apizero", clock=clock)
    server = KeyServer()
    server.add(FIREBASE_CERTS_URL, lambda: pem_map(idp.keys, NOW), max_age=20000)
    with server.bridge({"issuers": [ENTRY]}, clock) as bridge:
        bridge.verify(idp.mint(password_user()))
        idp.rotate_keys()
        clock.advance(31)  # past the refetch cooldown that the first fetch started
        vt = bridge.verify(idp.mint(password_user()))
        assert vt.key_id == idp.keys[-1].kid
    assert server.count(FIREBASE_CERTS_URL) == 2


# -- configuration ---------------------------------------------------------------------------


def test_profile_defaults() -> None:
    profile = FirebaseConfig(project_id="my-project", tenants=["tenant-a"], sign_in_providers=["password"])
    assert profile.trusted_issuers == ("https://securetoken.google.com/my-project",)
    spec = profile.key_source
    assert (spec.jwks_uri, spec.format) == (FIREBASE_CERTS_URL, "x509_pem_map")
    assert (profile.algorithms, profile.token_types) == (["RS256"], ["id"])
    assert profile.max_subject_length == 128


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"project_id": "https://securetoken.google.com/my-project"}, "project_id"),
        ({"project_id": "123456789012"}, "number"),
        ({"project_id": "My Project"}, "project_id"),
        ({"project_id": ""}, "project_id"),
        ({"tenants": []}, "tenants"),
        ({"sign_in_providers": [""]}, "sign_in_providers"),
        ({"token_types": ["access"]}, "token_types"),
        ({"algorithms": ["RS512"]}, "RS256"),
        ({"audiences": ["apizero"]}, "audiences"),
    ],
)
def test_invalid_configuration(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict({"issuers": [{**ENTRY, **entry}]})
    assert info.value.code == "config_error"
    assert fragment in str(info.value)
