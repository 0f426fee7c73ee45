"""The AWS Cognito user pool profile (``provider: cognito``).

Tokens are AWS's official sample payloads (providers.md §1.8, from the
"Using the ID token" / "Using the access token" pages) re-signed by a mock
pool and moved to the frozen clock. Security rows: OIDC-03 (a)-(d).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from federation.providers.cognito import CognitoIssuerConfig

from federation import Bridge
from federation.config import load_config
from federation.errors import ConfigError, InvalidToken
from federation.testing import FrozenClock, MockIdP, generate_signing_key

NOW = 1_800_000_000
REGION = "us-west-2"
POOL = "us-west-2_example"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
UPDATED_ISSUER = f"https://issuer-cognito-idp.{REGION}.amazonaws.com/{POOL}"
JWKS_URI = f"{ISSUER}/.well-known/jwks.json"
CLIENT = "xxxxxxxxxxxxexample"
OTHER_CLIENT = "7abcdefghijklmnopqrstuvwxy"
API = "https://api.example.com"

# Official ID token payload (AWS "Using the ID token"); iat/exp/auth_time moved to the clock.
ID_SAMPLE: dict[str, Any] = {
    "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "cognito:groups": ["test-group-a", "test-group-b", "test-group-c"],
    "email_verified": True,
    "cognito:preferred_role": "arn:aws:iam::111122223333:role/my-test-role",
    "iss": ISSUER,
    "cognito:username": "my-test-user",
    "middle_name": "Jane",
    "nonce": "abcdefg",
    "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "cognito:roles": ["arn:aws:iam::111122223333:role/my-test-role"],
    "aud": CLIENT,
    "identities": [
        {
            "userId": "amzn1.account.EXAMPLE",
            "providerName": "LoginWithAmazon",
            "providerType": "LoginWithAmazon",
            "issuer": None,
            "primary": "true",
            "dateCreated": "1642699117273",
        }
    ],
    "event_id": "64f513be-32db-42b0-b78e-b02127b4f463",
    "token_use": "id",
    "auth_time": NOW - 60,
    "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "email": "my-test-user@example.com",
}

# Official access token payload (AWS "Using the access token", with resource binding 'aud').
ACCESS_SAMPLE: dict[str, Any] = {
    "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "device_key": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "cognito:groups": ["testgroup"],
    "iss": ISSUER,
    "version": 2,
    "client_id": CLIENT,
    "aud": API,
    "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "token_use": "access",
    "scope": "phone openid profile resourceserver.1/appclient2 email",
    "auth_time": NOW - 60,
    "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "username": "my-test-user",
}


@pytest.fixture(scope="module")
def frozen() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def pool(frozen: FrozenClock) -> Iterator[MockIdP]:
    """The mock pool; like Cognito it signs id and access tokens with two different RSA keys."""
    idp = MockIdP(issuer=ISSUER, audience=CLIENT, jwks_path=f"/{POOL}/.well-known/jwks.json", clock=frozen)
    idp.rotate_keys(keep_old=True)  # a second published RS256 key
    assert idp.jwks_uri == JWKS_URI
    yield idp
    idp.close()


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider": "cognito",
        "region": REGION,
        "user_pool_id": POOL,
        "client_ids": [CLIENT],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def make(pool: MockIdP) -> Iterator[Callable[..., Bridge]]:
    built: list[Bridge] = []

    def factory(**overrides: Any) -> Bridge:
        bridge = pool.bridge(config={"issuers": [entry(**overrides)]})
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


def id_token(pool: MockIdP, **claims: Any) -> str:
    return pool.mint({**ID_SAMPLE, **claims}, key=pool.keys[0])


def access_token(pool: MockIdP, **claims: Any) -> str:
    return pool.mint({**ACCESS_SAMPLE, **claims}, key=pool.keys[1])


def rejected(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(cls) as info:
        bridge.verify(token)
    assert info.value.code == code
    # every rejection after routing names the configured issuer; before it, there is none
    assert (info.value.issuer is None) is (code == "untrusted_issuer")
    return info.value


async def arejected(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(cls) as info:
        await bridge.averify(token)
    assert info.value.code == code
    return info.value


# -- configuration -------------------------------------------------------------------------------


def test_the_issue_example_config_derives_both_issuers_and_one_key_url() -> None:
    config = load_config(
        {
            "issuers": [
                {
                    "provider": "cognito",
                    "region": "eu-west-1",
                    "user_pool_id": "eu-west-1_AbCdEf123",
                    "client_ids": ["4l1m2s3example"],
                    "token_use": ["id", "access"],
                }
            ]
        }
    )
    profile = config.issuers[0]
    assert isinstance(profile, CognitoIssuerConfig)
    assert profile.trusted_issuers == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
        "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    )
    spec = profile.key_source
    assert (
        spec.jwks_uri
        == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json"
    )
    assert spec.discovery_url is None
    assert profile.token_types == ["id", "access"]
    assert profile.algorithms == ["RS256"]


def test_region_defaults_to_the_pool_ids_prefix_and_token_use_is_an_alias() -> None:
    profile = CognitoIssuerConfig.model_validate(
        {
            "provider": "cognito",
            "user_pool_id": "us-gov-west-1_Ab12",
            "client_ids": ["c"],
            "token_use": ["access"],
        }
    )
    assert profile.trusted_issuers[0] == "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Ab12"
    assert profile.token_types == ["access"]
    assert CognitoIssuerConfig.model_validate(entry(token_types=["id"])).token_types == ["id"]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"region": "eu-west-1"}, "region does not match the user pool ID"),
        ({"region": "Europe"}, "region must be an AWS region name"),
        ({"region": None, "user_pool_id": "example"}, "user_pool_id must look like"),
        ({"region": None, "user_pool_id": "us-west-2_"}, "user_pool_id must look like"),
        (
            {"region": None, "user_pool_id": "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_x"},
            "user_pool_id",
        ),
        ({"region": "cn-north-1", "user_pool_id": "cn-north-1_Ab12"}, "China"),
        ({"token_use": ["id"], "token_types": ["id"]}, "either token_use or token_types"),
        ({"token_use": ["refresh"]}, "token_use"),
        ({"client_ids": []}, "client_ids"),
        ({"client_ids": ["my app"]}, "app client IDs"),
        ({"audiences": [""]}, "non-empty strings"),
        ({"issuer_forms": ["new"]}, "issuer_forms"),
        ({"algorithms": ["HS256"]}, "never accepted"),
        ({"userpool": POOL}, "unknown key"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [entry(**overrides)]})
    assert info.value.code == "config_error"
    assert needle in str(info.value)


# -- accepted tokens ------------------------------------------------------------------------------


def test_the_official_id_token_is_accepted_with_its_identity(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    vt = make().verify(id_token(pool))
    assert (vt.provider, vt.token_type, vt.issuer) == ("cognito", "id", ISSUER)
    assert vt.identity_key == (ISSUER, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    assert vt.email == "my-test-user@example.com"
    assert vt.email_verified is True
    assert vt.username == "my-test-user"
    assert vt.groups == ("test-group-a", "test-group-b", "test-group-c")
    assert vt.roles == ("arn:aws:iam::111122223333:role/my-test-role",)
    assert vt.key_id == pool.keys[0].kid


def test_the_official_access_token_is_accepted_with_its_identity(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    vt = make(audiences=[API]).verify(access_token(pool))
    assert (vt.token_type, vt.key_id) == ("access", pool.keys[1].kid)
    assert vt.identity_key == (ISSUER, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    assert vt.username == "my-test-user"
    assert vt.groups == ("testgroup",)
    assert (vt.email, vt.email_verified, vt.roles) == (None, False, ())


def test_roles_come_from_id_tokens_only(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    """``cognito:roles`` (IAM role ARNs) is an id token claim; an access token naming them
    was not written by Cognito, and they never became the user's roles from it."""
    arn = "arn:aws:iam::111122223333:role/my-test-role"
    vt = make().verify(access_token(pool, aud=None, **{"cognito:roles": [arn]}))
    assert vt.token_type == "access" and vt.roles == ()


@pytest.mark.anyio
async def test_async_accepts_both_kinds(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    assert (await bridge.averify(id_token(pool))).token_type == "id"
    assert (await bridge.averify(access_token(pool, aud=None))).token_type == "access"


def test_an_access_token_without_aud_is_bound_by_client_id(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    # Older revisions of the AWS sample, and every token without a resource binding, have no 'aud'.
    assert make().verify(access_token(pool, aud=None)).audience == ()
    assert make(audiences=[API]).verify(access_token(pool, aud=None)).token_type == "access"


def test_the_updated_issuer_form_uses_the_same_keys_and_identity_namespace(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    before = len(pool.requests_to("jwks"))
    vt = make().verify(id_token(pool, iss=UPDATED_ISSUER))
    assert vt.issuer == UPDATED_ISSUER
    assert vt.identity_key == (ISSUER, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    fetched = pool.requests_to("jwks")[before:]
    assert [str(r.url) for r in fetched] == [JWKS_URI]


@pytest.mark.parametrize(
    ("value", "verified"),
    [
        (True, True),
        ("true", True),
        ("True", True),
        (False, False),
        ("false", False),
        (1, False),
        (None, False),
    ],
)
def test_email_verified_as_cognito_renders_it(
    pool: MockIdP, make: Callable[..., Bridge], value: object, verified: bool
) -> None:
    assert make().verify(id_token(pool, email_verified=value)).email_verified is verified


def test_email_verified_without_an_email_vouches_for_nothing(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    vt = make().verify(id_token(pool, email=None))
    assert (vt.email, vt.email_verified) == (None, False)


def test_a_federated_users_username_and_no_groups(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    vt = make().verify(
        id_token(
            pool, **{"cognito:username": "LoginWithAmazon_amzn1.account.EXAMPLE", "cognito:groups": None}
        )
    )
    assert (vt.username, vt.groups) == ("LoginWithAmazon_amzn1.account.EXAMPLE", ())


# -- OIDC-03: token_use confusion, pools and app clients ---------------------------------------------


def test_oidc03a_an_access_token_on_the_id_token_path(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make(token_use=["id"])
    token = access_token(pool, aud=None, client_id="client-123")
    rejected(bridge, token, InvalidToken, "wrong_token_type")
    # ... even when it carries an 'aud' equal to the client id
    rejected(bridge, access_token(pool, aud=CLIENT), InvalidToken, "wrong_token_type")


def test_oidc03b_an_id_token_on_the_access_token_path(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    rejected(make(token_use=["access"]), id_token(pool), InvalidToken, "wrong_token_type")


def test_oidc03c_a_token_from_another_pool_in_the_same_region(
    pool: MockIdP, make: Callable[..., Bridge]
) -> None:
    other = f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_OtherPool1"
    bridge = make()
    rejected(bridge, id_token(pool, iss=other), InvalidToken, "untrusted_issuer")
    rejected(bridge, access_token(pool, iss=other), InvalidToken, "untrusted_issuer")


def test_an_identity_pool_token_is_not_a_user_pool_token(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    token = id_token(pool, iss="https://cognito-identity.amazonaws.com", token_use=None)
    rejected(make(), token, InvalidToken, "untrusted_issuer")


@pytest.mark.parametrize("token_use", [None, "refresh", "ID", ["id"], ""])
def test_oidc03d_token_use_missing_or_unknown(
    pool: MockIdP, make: Callable[..., Bridge], token_use: object
) -> None:
    rejected(make(), id_token(pool, token_use=token_use), InvalidToken, "wrong_token_type")


@pytest.mark.anyio
async def test_oidc03_async_rejections(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    await arejected(make(token_use=["id"]), access_token(pool), InvalidToken, "wrong_token_type")
    await arejected(make(), id_token(pool, token_use=None), InvalidToken, "wrong_token_type")
    await arejected(make(), access_token(pool, client_id=OTHER_CLIENT), InvalidToken, "invalid_audience")


def test_the_updated_issuer_can_be_switched_off(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    rejected(
        make(issuer_forms=["original"]), id_token(pool, iss=UPDATED_ISSUER), InvalidToken, "untrusted_issuer"
    )
    rejected(make(issuer_forms=["updated"]), id_token(pool), InvalidToken, "untrusted_issuer")


def test_an_id_token_for_another_app_client(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    rejected(bridge, id_token(pool, aud=OTHER_CLIENT), InvalidToken, "invalid_audience")
    rejected(bridge, id_token(pool, aud=[CLIENT, OTHER_CLIENT]), InvalidToken, "invalid_audience")
    rejected(bridge, id_token(pool, aud=None), InvalidToken, "invalid_audience")


@pytest.mark.parametrize("client_id", [OTHER_CLIENT, None, 123, [CLIENT]])
def test_an_access_token_for_another_or_no_app_client(
    pool: MockIdP, make: Callable[..., Bridge], client_id: object
) -> None:
    # fastapi-cloudauth#76: checking only iss accepts any app client of the pool.
    rejected(make(), access_token(pool, aud=None, client_id=client_id), InvalidToken, "invalid_audience")


def test_several_app_clients_may_be_trusted(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make(client_ids=[CLIENT, OTHER_CLIENT])
    assert bridge.verify(access_token(pool, aud=None, client_id=OTHER_CLIENT)).token_type == "access"
    assert bridge.verify(id_token(pool, aud=OTHER_CLIENT)).token_type == "id"


@pytest.mark.parametrize("aud", [API, "https://other-api.example.com", [API], 7, []])
def test_a_resource_binding_when_no_audiences_are_configured(
    pool: MockIdP, make: Callable[..., Bridge], aud: object
) -> None:
    # RFC 8707 section 2: a token bound to a resource is for that resource alone, and
    # with no 'audiences' configured no resource is this application's.
    bridge = make()
    assert bridge.verify(access_token(pool, aud=None)).token_type == "access"
    rejected(bridge, access_token(pool, aud=aud), InvalidToken, "invalid_audience")


@pytest.mark.parametrize("aud", ["https://other-api.example.com", ["https://other-api.example.com"], 7, []])
def test_a_resource_binding_for_another_api(pool: MockIdP, make: Callable[..., Bridge], aud: object) -> None:
    bridge = make(audiences=[API])
    assert bridge.verify(access_token(pool)).audience == (API,)
    rejected(bridge, access_token(pool, aud=aud), InvalidToken, "invalid_audience")


# -- header and registered claims ------------------------------------------------------------------


def test_an_id_token_typed_as_an_access_token(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make(audiences=[API])
    rejected(
        bridge,
        pool.mint(ID_SAMPLE, key=pool.keys[0], headers={"typ": "at+jwt"}),
        InvalidToken,
        "wrong_token_type",
    )
    rejected(
        bridge,
        pool.mint(ID_SAMPLE, key=pool.keys[0], headers={"typ": "logout+jwt"}),
        InvalidToken,
        "wrong_token_type",
    )
    assert (
        bridge.verify(pool.mint(ACCESS_SAMPLE, key=pool.keys[1], headers={"typ": "at+jwt"})).token_type
        == "access"
    )
    assert bridge.verify(pool.mint(ID_SAMPLE, key=pool.keys[0], headers={"typ": None})).token_type == "id"


def test_only_rs256_by_default(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    rejected(make(), pool.mint(ID_SAMPLE, alg="ES256"), InvalidToken, "disallowed_algorithm")


def test_a_forged_signature(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    attacker = generate_signing_key("RS256")
    token = pool.mint(ID_SAMPLE, key=attacker, kid=pool.keys[0].kid)
    rejected(make(), token, InvalidToken, "bad_signature")


def test_iat_is_required_on_both_kinds_and_expiry_applies(pool: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    err = rejected(
        bridge, pool.mint(ACCESS_SAMPLE, key=pool.keys[1], iat=None), InvalidToken, "invalid_claim"
    )
    assert getattr(err, "claim", None) == "iat"
    rejected(bridge, pool.mint(ID_SAMPLE, key=pool.keys[0], expired=True), InvalidToken, "expired")
