"""Issue 10 §2: issuer-scoped mapping rules match every spelling of the issuer the profile
accepts (Google's two issuer strings, Cognito's two forms, Entra v1 and v2 of one tenant on
one entry), through ``bridge.login``: a deny rule scoped to one spelling refuses a token of
the other. They compare by the issuer's namespace (``ProviderProfile.namespace_of``);
another issuer (another Entra tenant, a generic OIDC issuer) is still another scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from federation.providers import AzureAdConfig, CognitoIssuerConfig, GoogleConfig, OidcIssuerConfig

from federation import Bridge
from federation.errors import AccessDenied
from federation.mapping import Mapping
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP

GOOGLE_CLIENT = "1234567890-abc123def456.apps.googleusercontent.com"
POOL = "eu-west-1_AbCdEf123"
COGNITO_ORIGINAL = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
COGNITO_UPDATED = f"https://issuer-cognito-idp.eu-west-1.amazonaws.com/{POOL}"
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
OTHER_TENANT = "bbbbcccc-1111-dddd-2222-eeee3333ffff"
ENTRA_CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"


def v1(tid: str) -> str:
    return f"https://sts.windows.net/{tid}/"


def v2(tid: str) -> str:
    return f"https://login.microsoftonline.com/{tid}/v2.0"


Login = Callable[..., Any]


@pytest.fixture
def login(clock: FrozenClock) -> Iterator[Login]:
    """``login(idp, mapping, token, **entry)``: bridge.login through a bridge whose one entry
    is ``idp.issuer_config(**entry)`` and whose mapping is ``mapping`` (a dict)."""
    built: list[Bridge] = []

    def run(idp: MockIdP, mapping: dict[str, Any], token: str, **entry: Any) -> Any:
        bridge = idp.bridge(
            config={"issuers": [idp.issuer_config(**entry)]},
            store=MemoryStore(),
            mapping=Mapping.from_dict(mapping),
            on_event=lambda e: None,
            audit=lambda e: None,
        )
        built.append(bridge)
        return bridge.login(token)

    yield run
    for bridge in built:
        bridge.close()


def overlay(listed: str) -> dict[str, Any]:
    """A mapping whose ``issuers:`` section for ``listed`` denies every login."""
    deny = [{"when": {"claim": "sub", "exists": True}, "code": "scoped_deny"}]
    return {"version": 1, "issuers": {listed: {"deny": deny}}}


def condition(listed: str) -> dict[str, Any]:
    """A mapping whose top-level deny rule is scoped with ``{issuer: listed}``."""
    return {"version": 1, "deny": [{"when": {"issuer": listed}, "code": "scoped_deny"}]}


def refused(run: Callable[[], Any]) -> None:
    with pytest.raises(AccessDenied) as caught:
        run()
    assert caught.value.reason == "scoped_deny"


SCOPES = pytest.mark.parametrize("scope", [overlay, condition], ids=["issuers-section", "issuer-condition"])


# -- Google -------------------------------------------------------------------------------------


@pytest.fixture
def google(clock: FrozenClock) -> MockIdP:
    return MockIdP.for_provider("google", client_id=GOOGLE_CLIENT, clock=clock)


@SCOPES
@pytest.mark.parametrize(
    ("listed", "token_iss"),
    [
        ("https://accounts.google.com", "accounts.google.com"),
        ("accounts.google.com", "https://accounts.google.com"),
    ],
)
def test_google_a_rule_for_one_spelling_applies_to_the_other(
    login: Login, google: MockIdP, scope: Any, listed: str, token_iss: str
) -> None:
    token = google.mint(iss=token_iss)
    refused(lambda: login(google, scope(listed), token))


# -- Cognito ------------------------------------------------------------------------------------


@pytest.fixture
def cognito(clock: FrozenClock) -> MockIdP:
    return MockIdP.for_provider("cognito", user_pool_id=POOL, client_id="abcdefghij1234567890", clock=clock)


@SCOPES
@pytest.mark.parametrize(
    ("listed", "token_iss"), [(COGNITO_ORIGINAL, COGNITO_UPDATED), (COGNITO_UPDATED, COGNITO_ORIGINAL)]
)
def test_cognito_a_rule_for_one_form_applies_to_the_other(
    login: Login, cognito: MockIdP, scope: Any, listed: str, token_iss: str
) -> None:
    token = cognito.mint(iss=token_iss)
    refused(lambda: login(cognito, scope(listed), token))


@SCOPES
def test_cognito_another_pool_is_another_scope(login: Login, cognito: MockIdP, scope: Any) -> None:
    other = "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other9999"
    result = login(cognito, scope(other), cognito.mint(iss=COGNITO_UPDATED))
    assert result.created


# -- Entra ID v1 and v2 on one entry --------------------------------------------------------------


@pytest.fixture
def entra(clock: FrozenClock) -> MockIdP:
    return MockIdP.for_provider("azure_ad", tenant=TENANT, client_id=ENTRA_CLIENT, clock=clock)


def entra_token(idp: MockIdP, version: str, tid: str = TENANT) -> str:
    if version == "2.0":
        return idp.mint(iss=v2(tid), tid=tid)
    return idp.mint(iss=v1(tid), tid=tid, ver="1.0", unique_name="abeli@contoso.example")


@SCOPES
@pytest.mark.parametrize(("listed", "version"), [(v2(TENANT), "1.0"), (v1(TENANT), "2.0")])
def test_entra_a_rule_for_one_version_applies_to_the_other(
    login: Login, entra: MockIdP, scope: Any, listed: str, version: str
) -> None:
    token = entra_token(entra, version)
    refused(lambda: login(entra, scope(listed), token, versions=["1.0", "2.0"]))


@SCOPES
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_entra_multi_tenant_scopes_stay_per_tenant(
    login: Login, clock: FrozenClock, scope: Any, version: str
) -> None:
    """One multi-tenant entry: a rule listed for the other tenant's v2 issuer refuses that
    tenant's v1 and v2 tokens, and never this tenant's."""
    idp = MockIdP.for_provider(
        "azure_ad", tenant="organizations", tenant_id=TENANT, client_id=ENTRA_CLIENT, clock=clock
    )
    entry = {"versions": ["1.0", "2.0"], "allowed_tenants": [TENANT, OTHER_TENANT]}
    mapping = scope(v2(OTHER_TENANT))
    refused(lambda: login(idp, mapping, entra_token(idp, version, OTHER_TENANT), **entry))
    assert login(idp, mapping, entra_token(idp, version, TENANT), **entry).created


# -- the generic profile: exact strings, as before -------------------------------------------------


@SCOPES
def test_a_generic_issuer_is_matched_exactly(login: Login, idp: MockIdP, scope: Any) -> None:
    refused(lambda: login(idp, scope("https://idp.test"), idp.mint(sub="u")))
    assert login(idp, scope("https://idp.test/"), idp.mint(sub="u")).created


# -- the hook, the plan cache, dry runs -----------------------------------------------------------


def test_namespace_of_names_the_identity_namespace() -> None:
    assert GoogleConfig.namespace_of("accounts.google.com") == "https://accounts.google.com"
    assert GoogleConfig.namespace_of("https://accounts.google.com") == "https://accounts.google.com"
    assert GoogleConfig.namespace_of("https://accounts.google.com/") is None
    assert CognitoIssuerConfig.namespace_of(COGNITO_UPDATED) == COGNITO_ORIGINAL
    assert CognitoIssuerConfig.namespace_of(COGNITO_ORIGINAL) == COGNITO_ORIGINAL
    assert CognitoIssuerConfig.namespace_of(COGNITO_ORIGINAL + "/") is None
    assert (
        AzureAdConfig.namespace_of(v1(TENANT)) == AzureAdConfig.namespace_of(v2(TENANT)) == f"entra:{TENANT}"
    )
    assert AzureAdConfig.namespace_of(v2(TENANT.upper())) == f"entra:{TENANT}"
    assert AzureAdConfig.namespace_of("https://login.microsoftonline.com/common/v2.0") is None
    assert AzureAdConfig.namespace_of(f"entra:{TENANT}") is None  # a namespace is not an issuer
    assert OidcIssuerConfig.namespace_of("https://idp.test") == "https://idp.test"


def test_the_namespace_is_the_identity_namespace_of_verified_tokens(
    google: MockIdP, cognito: MockIdP, entra: MockIdP
) -> None:
    for idp, token, entry in (
        (google, google.mint(iss="accounts.google.com"), {}),
        (cognito, cognito.mint(iss=COGNITO_UPDATED), {}),
        (entra, entra_token(entra, "1.0"), {"versions": ["1.0", "2.0"]}),
    ):
        bridge = idp.bridge(config={"issuers": [idp.issuer_config(**entry)]}, on_event=lambda e: None)
        vt = bridge.verify(token)
        profile = type(bridge.config.issuers[0])
        assert profile.namespace_of(vt.issuer) == vt.identity_key[0]
        bridge.close()


def test_the_plan_cache_stays_bounded_across_tenants(entra: MockIdP) -> None:
    """Arbitrary issuer strings (any Entra tenant) share plans: one per provider and set of
    matching sections, never one per issuer string."""
    mapping = Mapping.from_dict(overlay(v2(TENANT)))
    planner = mapping._planner
    claims = {"sub": "s", "oid": "o", "tid": TENANT}
    for n in range(200):
        tid = f"{n:08x}-0000-4000-8000-000000000000"
        mapping.apply_claims({**claims, "tid": tid}, provider="azure_ad", issuer=v1(tid))
        mapping.apply_claims({**claims, "tid": tid}, provider="azure_ad", issuer=v2(tid))
    assert len(planner._plans) == 1
    denied = mapping.apply_claims(claims, provider="azure_ad", issuer=v1(TENANT))
    assert denied.denied == "scoped_deny"
    assert len(planner._plans) == 2


@SCOPES
@pytest.mark.parametrize(
    ("provider", "listed", "token_iss"),
    [
        ("google", "https://accounts.google.com", "accounts.google.com"),
        ("cognito", COGNITO_ORIGINAL, COGNITO_UPDATED),
        ("azure_ad", v2(TENANT), v1(TENANT)),
        ("azure_ad", v1(TENANT), v2(TENANT)),
    ],
)
def test_dry_runs_match_the_same_way(scope: Any, provider: str, listed: str, token_iss: str) -> None:
    mapping = Mapping.from_dict(scope(listed))
    claims = {"sub": "s", "iss": token_iss, "tid": TENANT, "oid": "o", "token_use": "id"}
    assert mapping.apply_claims(claims, provider=provider).denied == "scoped_deny"
    # another provider's profile reads the strings its own way: a generic issuer matches exactly
    assert mapping.apply_claims(claims, provider="oidc").denied is None


def test_both_spellings_listed_apply_both_sections_in_file_order(google: MockIdP, login: Login) -> None:
    mapping = {
        "version": 1,
        "attributes": {"email": {"from": "$email"}},
        "roles": {"sync": "additive", "default": []},
        "issuers": {
            "accounts.google.com": {"roles": {"default": ["legacy"]}},
            "https://accounts.google.com": {"roles": {"default": ["current"]}},
        },
    }
    result = login(google, mapping, google.mint(iss="https://accounts.google.com"))
    assert result.user.roles == {"legacy", "current"}
    rules = [e.rule for e in result.mapping.trace if e.rule.endswith("roles.default")]
    assert rules == [
        "issuers['accounts.google.com'].roles.default",
        "issuers['https://accounts.google.com'].roles.default",
    ]
