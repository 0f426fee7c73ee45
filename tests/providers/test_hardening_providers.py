"""Issue 10, providers: Entra's ``oid``, the Entra audience trap, key URL overrides for
emulators, client-bound access tokens on the generic profile, and the emulator docs.

Every token comes from ``federation.testing.MockIdP`` (shaped by ``for_provider``);
key sets are served by its transport or by its real loopback server (127.0.0.1). The
clock is frozen. Sync and async verification both run where both exist (``check``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from federation import Bridge
from federation.config import load_config
from federation.errors import ConfigError, DisallowedAlgorithm, InvalidAudience, InvalidClaim, InvalidToken
from federation.testing import FrozenClock, MockIdP

Check = Callable[[Bridge, str], Any]

ENTRA_CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
ENTRA_TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def refused(check: Check, bridge: Bridge, token: str, kind: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(kind) as info:
        check(bridge, token)
    assert info.value.code == code
    return info.value


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# -- 1. Entra and B2C tokens without 'oid' ---------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("kind", ["id", "access"])
def test_entra_token_without_oid_is_refused(
    check: Check, clock: FrozenClock, version: str, kind: str
) -> None:
    idp = MockIdP.for_provider("azure_ad", version=version, clock=clock)
    with idp.bridge() as bridge:
        assert check(bridge, idp.mint(token_type=kind)).identity_key[0] == f"entra:{ENTRA_TENANT}"
        # A v2 id token requested without the 'profile' scope has no oid: keying it on
        # (iss, sub) would make a new (active) account of a known (maybe disabled) user.
        error = refused(check, bridge, idp.mint(token_type=kind, oid=None), InvalidClaim, "invalid_claim")
        assert isinstance(error, InvalidClaim) and error.claim == "oid"
        for bad in ("", 42, ["690222be-ff1a-4d56-abd1-7e4f7d38e474"]):
            error = refused(check, bridge, idp.mint(token_type=kind, oid=bad), InvalidClaim, "invalid_claim")
            assert isinstance(error, InvalidClaim) and error.claim == "oid"
    idp.close()


@pytest.mark.parametrize("kind", ["id", "access"])
def test_b2c_is_keyed_on_the_object_id_with_or_without_oid(
    check: Check, clock: FrozenClock, kind: str
) -> None:
    idp = MockIdP.for_provider("azure_ad_b2c", clock=clock)
    user = "1558f87f-452b-4757-bcd1-883a1b2c3d4e"
    with idp.bridge() as bridge:
        with_oid = check(bridge, idp.mint(token_type=kind)).identity_key
        # B2C's 'sub' is the object id unless the user flow says otherwise; without the
        # "User's Object ID" claim the user is still the same user, in the same namespace.
        without_oid = check(bridge, idp.mint(token_type=kind, oid=None)).identity_key
        assert with_oid == without_oid == (f"entra:{ENTRA_TENANT}", user)


@pytest.mark.parametrize("sub", ["Not supported currently. Use oid claim.", "david@contoso.example"])
def test_b2c_without_oid_and_without_an_object_id_sub_is_refused(
    check: Check, clock: FrozenClock, sub: str
) -> None:
    idp = MockIdP.for_provider("azure_ad_b2c", clock=clock)
    with idp.bridge() as bridge:
        error = refused(check, bridge, idp.mint(oid=None, sub=sub), InvalidClaim, "invalid_claim")
        assert isinstance(error, InvalidClaim) and error.claim == "oid"
        assert check(bridge, idp.mint(sub=sub)).identity_key[1] == "1558f87f-452b-4757-bcd1-883a1b2c3d4e"


# -- 2. The Entra audience trap ---------------------------------------------------------------------------


def entra_entry(**fields: Any) -> dict[str, Any]:
    return {"provider": "azure_ad", "tenant": ENTRA_TENANT, **fields}


def test_v2_only_entry_without_a_guid_audience_is_refused_at_load_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [entra_entry(audiences=["api://my-api"])]})
    assert info.value.field == "issuers[0].audiences"
    assert "GUID" in str(info.value) and "2.0" in str(info.value)
    path = tmp_path / "federation.yaml"
    path.write_text(
        f"issuers:\n  - provider: azure_ad\n    tenant: {ENTRA_TENANT}\n    audiences: [api://my-api]\n"
    )
    with pytest.raises(ConfigError) as located:
        load_config(path)
    assert (located.value.field, located.value.line) == ("issuers[0].audiences", 4)


@pytest.mark.parametrize(
    "fields",
    [
        {"audiences": [ENTRA_CLIENT]},
        {"audiences": ["api://my-api", ENTRA_CLIENT]},
        {"audiences": ["api://my-api"], "versions": ["1.0"]},  # v1 access tokens may carry the URI
        {"audiences": ["api://my-api"], "versions": ["1.0", "2.0"]},
    ],
)
def test_entries_that_real_tokens_can_match_load(fields: dict[str, Any]) -> None:
    assert load_config({"issuers": [entra_entry(**fields)]}).issuers[0].provider == "azure_ad"


def test_the_mock_mints_v2_tokens_with_the_client_id_guid(clock: FrozenClock) -> None:
    idp = MockIdP.for_provider("azure_ad", app_id_uri="api://my-api", clock=clock)
    for kind in ("id", "access"):
        assert idp.claims(token_type=kind)["aud"] == ENTRA_CLIENT
    assert idp.issuer_config()["audiences"] == [ENTRA_CLIENT]
    with pytest.raises(ValueError, match="GUID"):
        MockIdP.for_provider("azure_ad", audience="api://my-api")
    with pytest.raises(ValueError, match="GUID"):
        MockIdP.for_provider("azure_ad", client_id="my-api")


def test_the_mock_mints_v1_access_tokens_for_the_app_id_uri(check: Check, clock: FrozenClock) -> None:
    idp = MockIdP.for_provider("azure_ad", version="1.0", app_id_uri="api://my-api", clock=clock)
    assert idp.claims(token_type="access")["aud"] == "api://my-api"
    assert idp.claims(token_type="id")["aud"] == ENTRA_CLIENT  # id tokens: always the client id
    assert idp.issuer_config()["audiences"] == [ENTRA_CLIENT, "api://my-api"]
    with idp.bridge() as bridge:
        assert check(bridge, idp.mint(token_type="access")).audience == ("api://my-api",)
        assert check(bridge, idp.mint()).audience == (ENTRA_CLIENT,)
    plain = MockIdP.for_provider("azure_ad", version="1.0", clock=clock)
    assert plain.claims(token_type="access")["aud"] == ENTRA_CLIENT  # no App ID URI: the GUID


# -- 3. Key URL overrides for emulators ---------------------------------------------------------------------


COGNITO_POOL = "us-west-2_example"
COGNITO_CLIENT = "xxxxxxxxxxxxexample"


def test_cognito_jwks_uri_override_over_a_real_loopback_server(check: Check, clock: FrozenClock) -> None:
    idp = MockIdP.for_provider("cognito", clock=clock)
    with idp.serve() as url:
        config = {
            "issuers": [
                {
                    "provider": "cognito",
                    "user_pool_id": COGNITO_POOL,
                    "client_ids": [COGNITO_CLIENT],
                    "jwks_uri": f"{url}/{COGNITO_POOL}/.well-known/jwks.json",
                }
            ],
            "keys": {"allow_loopback_http": True},
        }
        with Bridge.from_dict(config, clock=clock) as bridge:  # its own httpx client: real HTTP
            assert check(bridge, idp.mint()).token_type == "id"
            assert check(bridge, idp.mint(token_type="access")).token_type == "access"
            assert check(bridge, idp.mint(iss=idp.issuer.replace("://cognito-", "://issuer-cognito-")))
    assert [r.url.path for r in idp.requests_to("jwks")] == [f"/{COGNITO_POOL}/.well-known/jwks.json"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"provider": "cognito", "user_pool_id": COGNITO_POOL, "client_ids": ["c"]}, "jwks_uri"),
        ({"provider": "google", "client_ids": ["c.apps.googleusercontent.com"]}, "jwks_uri"),
        ({"provider": "firebase", "project_id": "my-project"}, "jwks_uri"),
    ],
)
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9229/jwks", "http://cognito.emulator.test/jwks", "ftp://x.test/jwks", "jwks"]
)
def test_overrides_follow_the_url_rules(entry: dict[str, Any], field: str, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [{**entry, field: url}]})
    assert info.value.field == f"issuers[0].{field}"
    if url.startswith("http://127.0.0.1"):
        config = load_config({"issuers": [{**entry, field: url}], "keys": {"allow_loopback_http": True}})
        assert config.issuers[0].key_source.jwks_uri == url
    https = load_config({"issuers": [{**entry, field: "https://emulator.test/keys"}]})
    assert (https.issuers[0].key_source.jwks_uri, https.issuers[0].key_source.format) == (
        "https://emulator.test/keys",
        "jwks",
    )


def test_google_jwks_uri_override_through_the_transport(check: Check, clock: FrozenClock) -> None:
    url = "https://google-emulator.test/oauth2/v3/certs"
    idp = MockIdP.for_provider("google", jwks_uri=url, clock=clock)
    config = {"issuers": [{"provider": "google", "client_ids": [idp.audience], "jwks_uri": url}]}
    with Bridge.from_dict(
        config,
        http_client=httpx.Client(transport=idp.transport()),
        async_http_client=httpx.AsyncClient(transport=idp.transport()),
        clock=clock,
    ) as bridge:
        assert check(bridge, idp.mint()).provider == "google"
    assert {str(r.url) for r in idp.requests_to("jwks")} == {url}


def test_firebase_jwks_uri_override_is_a_jwk_set(check: Check, clock: FrozenClock) -> None:
    idp = MockIdP.for_provider("firebase", key_format="jwks", clock=clock)
    with idp.serve() as url:
        entry = idp.issuer_config(served=True)
        path = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
        assert entry == {"provider": "firebase", "project_id": "my-project", "jwks_uri": url + path}
        with idp.bridge(served=True) as bridge:
            assert check(bridge, idp.mint()).provider == "firebase"
    certificates = MockIdP.for_provider("firebase", clock=clock)  # Google's PEM map: no override possible
    with certificates.serve(), pytest.raises(ValueError, match="JWK Set"):
        certificates.issuer_config(served=True)


def test_fixed_key_url_profiles_take_the_loopback_server(clock: FrozenClock) -> None:
    for name in ("cognito", "google"):
        idp = MockIdP.for_provider(name, clock=clock)
        with idp.serve() as url:
            assert idp.issuer_config(served=True)["jwks_uri"].startswith(url)
            with idp.bridge(served=True) as bridge:
                assert bridge.verify(idp.mint()).provider == name
        assert "jwks_uri" not in idp.issuer_config()  # the profile's own URL: nothing to override


# -- 4. The generic profile: access tokens bound by client_id, without aud -------------------------------


@pytest.fixture
def oidc_idp(clock: FrozenClock) -> MockIdP:
    return MockIdP(issuer="http://127.0.0.1:9229/local_pool", audience="my-api", clock=clock)


def client_bound_bridge(idp: MockIdP, **fields: Any) -> Bridge:
    entry = {**idp.issuer_config(), **fields}
    return idp.bridge(config={"issuers": [entry], "keys": {"allow_loopback_http": True}})


def test_access_token_with_a_listed_client_id_and_no_aud(check: Check, oidc_idp: MockIdP) -> None:
    with client_bound_bridge(oidc_idp, client_ids=["web-app"]) as bridge:
        token = oidc_idp.mint(token_type="access", aud=None, client_id="web-app", headers={"typ": None})
        verified = check(bridge, token)
        assert (verified.token_type, verified.audience) == ("access", ())
        for client in ("other-app", None, 7):
            unlisted = oidc_idp.mint(token_type="access", aud=None, client_id=client, scope="openid")
            refused(check, bridge, unlisted, InvalidAudience, "invalid_audience")


def test_a_present_aud_still_follows_the_audience_rules(check: Check, oidc_idp: MockIdP) -> None:
    with client_bound_bridge(oidc_idp, client_ids=["web-app"]) as bridge:
        # aud names us: accepted whoever the client is (unchanged behaviour)
        assert check(bridge, oidc_idp.mint(token_type="access", client_id="other-app")).audience == (
            "my-api",
        )
        other = oidc_idp.mint(token_type="access", aud="someone-else", client_id="web-app")
        refused(check, bridge, other, InvalidAudience, "invalid_audience")
        refused(
            check, bridge, oidc_idp.mint(token_type="access", aud=[]), InvalidAudience, "invalid_audience"
        )
        # an id token is never bound by client_id: it needs its aud
        refused(check, bridge, oidc_idp.mint(aud=None), InvalidAudience, "invalid_audience")
        assert check(bridge, oidc_idp.mint()).token_type == "id"


def test_without_client_ids_an_access_token_needs_its_aud(check: Check, oidc_idp: MockIdP) -> None:
    with client_bound_bridge(oidc_idp) as bridge:
        token = oidc_idp.mint(token_type="access", aud=None, client_id="my-api")
        refused(check, bridge, token, InvalidAudience, "invalid_audience")


def test_client_ids_must_be_non_empty_strings() -> None:
    entry = {
        "provider": "oidc",
        "issuer": "https://idp.test",
        "audiences": ["a"],
        "jwks_uri": "https://idp.test/k",
    }
    for bad in ([], [""]):
        with pytest.raises(ConfigError) as info:
            load_config({"issuers": [{**entry, "client_ids": bad}]})
        assert info.value.field == "issuers[0].client_ids"


@pytest.mark.parametrize("page", ["azure_ad.md", "cognito.md", "google.md", "firebase.md"])
def test_the_provider_pages_configs_load(page: str) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / "providers" / page).read_text(encoding="utf-8"), re.S)
    configs = [c for c in map(yaml.safe_load, blocks) if isinstance(c, dict) and "issuers" in c]
    assert configs
    for config in configs:
        assert load_config(config).issuers


# -- 5. docs/testing.md: testing against emulators ------------------------------------------------------


def emulator_section() -> str:
    text = (DOCS / "testing.md").read_text(encoding="utf-8")
    return text.split("## Testing against emulators", 1)[1].split("\n## ", 1)[0]


def test_every_emulator_snippet_loads() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", emulator_section(), re.S)
    assert len(blocks) >= 4
    for block in blocks:
        config = load_config(yaml.safe_load(block))
        assert config.issuers


def test_the_cognito_local_snippet_accepts_what_cognito_local_issues(
    check: Check, clock: FrozenClock
) -> None:
    """cognito-local signs id tokens with aud and access tokens with client_id and no aud."""
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", emulator_section(), re.S) if "9229" in b)
    entry = yaml.safe_load(block)["issuers"][0]
    idp = MockIdP(issuer=entry["issuer"], audience=entry["client_ids"][0], clock=clock)
    with idp.serve() as url:
        config = yaml.safe_load(block)
        config["issuers"][0]["jwks_uri"] = url + "/jwks"
        with Bridge.from_dict(config, clock=clock) as bridge:
            assert check(bridge, idp.mint(token_use="id")).token_type == "id"
            access = idp.mint(token_type="access", aud=None, token_use="access", headers={"typ": None})
            assert check(bridge, access).token_type == "access"
            refresh = idp.mint(aud=None)  # cognito-local's refresh token is a JWT: no aud, no client_id
            refused(check, bridge, refresh, InvalidAudience, "invalid_audience")


def test_firebase_auth_emulator_tokens_are_refused(check: Check, clock: FrozenClock) -> None:
    """The Firebase Auth emulator's ID tokens are unsigned (alg none, empty signature)."""
    idp = MockIdP.for_provider("firebase", clock=clock)
    claims = idp.claims()
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with idp.bridge() as bridge:
        refused(check, bridge, unsigned, DisallowedAlgorithm, "disallowed_algorithm")
        # with a kid (some emulator versions send one) it is the same refusal
        with_kid = f"{b64({'alg': 'none', 'kid': 'emulator', 'typ': 'JWT'})}.{b64(claims)}."
        refused(check, bridge, with_kid, DisallowedAlgorithm, "disallowed_algorithm")
    assert "disallowed_algorithm" in emulator_section()
    assert not idp.requests_to("jwks")  # refused before any key fetch


def test_async_and_sync_share_the_refusals(clock: FrozenClock) -> None:
    """One core: the same oid refusal from verify and averify on one bridge."""
    idp = MockIdP.for_provider("azure_ad", clock=clock)
    token = idp.mint(oid=None)
    with idp.bridge() as bridge:
        with pytest.raises(InvalidClaim) as sync_error:
            bridge.verify(token)
        with pytest.raises(InvalidClaim) as async_error:
            asyncio.run(bridge.averify(token))
    assert (sync_error.value.code, sync_error.value.claim) == (
        async_error.value.code,
        async_error.value.claim,
    )
