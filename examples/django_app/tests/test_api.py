"""Bearer tokens on the project's DRF API and plain views, the middleware and the backend."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from conftest import bearer
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.test import AsyncClient, Client

from federation import Bridge
from federation.django.models import FederatedIdentity
from federation.errors import AccountDisabled, TokenRevoked
from federation.testing import MockIdP

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_issuer_token_provisions_a_django_user(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(sub="ada", email="ada@example.com", given_name="Ada", family_name="Lovelace")
    response = client.get("/api/me", **bearer(token))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["username"].startswith("ada-")  # derived, unique: never a name an IdP could squat
    user: Any = get_user_model().objects.get(pk=body["id"])
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    identity = FederatedIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (idp.issuer, "ada")


def test_no_token_is_401_with_a_bearer_challenge(client: Client, bridge: Bridge) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401_invalid_token(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    forged = idp.mint(sub="ada")[:-4] + "AAAA"
    response = client.get("/api/me", **bearer(forged))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json()["error"] == "bad_signature"
    assert forged not in response.content.decode()


def test_the_apps_own_session_token_is_accepted(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="ada"))
    response = client.get("/api/me", **bearer(session.access_token))
    assert response.status_code == 200
    assert bridge.revoke(session.access_token)
    refused = client.get("/api/me", **bearer(session.access_token))
    assert refused.status_code == 401
    assert refused.json()["error"] == "revoked"


def test_roles_are_groups_and_guard_the_api(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    plain = idp.mint(sub="ada")
    assert client.get("/api/reports", **bearer(plain)).status_code == 403
    auditor = idp.mint(sub="grace", groups=["auditors"])
    response = client.get("/api/reports", **bearer(auditor))
    assert response.status_code == 200
    user: Any = get_user_model().objects.get(federated_identities__subject="grace")
    assert set(user.groups.values_list("name", flat=True)) == {"auditor"}
    assert not user.is_staff and not user.is_superuser


def test_groups_follow_the_mapping_authoritatively(bridge: Bridge, idp: MockIdP) -> None:
    first = bridge.login(idp.mint(sub="ops-person", groups=["ops", "auditors"]))
    user: Any = get_user_model().objects.get(pk=first.user.id)
    assert set(user.groups.values_list("name", flat=True)) == {"staff", "auditor"}
    assert user.is_staff and not user.is_superuser
    bridge.login(idp.mint(sub="ops-person", groups=["root"]))
    user.refresh_from_db()
    assert set(user.groups.values_list("name", flat=True)) == {"staff", "admin"}
    assert user.is_staff and user.is_superuser
    bridge.login(idp.mint(sub="ops-person", groups=[]))
    user.refresh_from_db()
    assert not user.groups.exists()
    assert not user.is_staff and not user.is_superuser


def test_a_bearer_post_needs_no_csrf_token(bridge: Bridge, idp: MockIdP) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/api/notes", {"text": "hi"}, **bearer(idp.mint(sub="ada")))
    assert response.status_code == 201
    assert response.json()["saved"] == "hi"


def test_the_middleware_signs_a_plain_view_in(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    response = client.get("/whoami", **bearer(idp.mint(sub="ada")))
    assert response.status_code == 200
    assert response.json()["via"] == "token"
    refused = client.get("/whoami", **bearer("not-a-token"))
    assert refused.status_code == 401


def test_a_disabled_user_is_refused_at_once(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(sub="ada")
    session = bridge.exchange(idp.mint(sub="ada"))
    assert client.get("/api/me", **bearer(token)).status_code == 200
    user: Any = get_user_model().objects.get(federated_identities__subject="ada")
    user.is_active = False
    user.save()  # the admin's checkbox: the user's tokens are revoked now, not at the next status check
    for credential in (token, session.access_token):
        refused = client.get("/api/me", **bearer(credential))
        assert refused.status_code in (401, 403), refused.content
    assert client.get("/whoami", **bearer(token)).status_code in (401, 403)
    assert authenticate(None, token=idp.mint(sub="ada")) is None


def test_a_user_loaded_without_is_active_costs_no_query_and_is_still_revoked_when_disabled(
    bridge: Bridge, idp: MockIdP, django_assert_num_queries: Any
) -> None:
    """The post_init receiver read is_active on every loaded user: a query per row of a
    .only() or .defer() listing."""
    session = bridge.exchange(idp.mint(sub="ada"))
    for n in range(5):
        bridge.login(idp.mint(sub=f"user-{n}"))
    with django_assert_num_queries(1):
        assert len(list(get_user_model().objects.only("username"))) == 6
    user: Any = get_user_model().objects.only("username").get(federated_identities__subject="ada")
    user.is_active = False
    user.save()
    with pytest.raises((TokenRevoked, AccountDisabled)):
        bridge.authenticate(session.access_token)


def test_the_backend_authenticates_a_token(bridge: Bridge, idp: MockIdP) -> None:
    user: Any = authenticate(None, token=idp.mint(sub="ada", email="ada@example.com"))
    assert user is not None and user.email == "ada@example.com"
    assert authenticate(None, token="garbage") is None
    assert authenticate(None, username="ada", password="x") is None  # ModelBackend's, and no password


def test_keys_out_of_reach_are_503_with_retry_after(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    idp.outage(503)
    response = client.get("/api/me", **bearer(idp.mint(sub="ada")))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == "keyset_unavailable"


def test_the_async_stack_authenticates_too(bridge: Bridge, idp: MockIdP) -> None:
    client = AsyncClient()
    token = idp.mint(sub="ada", email="ada@example.com")
    response = async_to_sync(client.get)("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "ada@example.com"
    refused = async_to_sync(client.get)("/whoami", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401


def without_the_middleware(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("federation.")]


def test_drf_alone_signs_bearer_tokens_in(
    settings: Any, client: Client, bridge: Bridge, idp: MockIdP
) -> None:
    without_the_middleware(settings)
    response = client.get("/api/me", **bearer(idp.mint(sub="ada", email="ada@example.com")))
    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


def test_drf_alone_refuses_like_the_middleware(
    settings: Any, client: Client, bridge: Bridge, idp: MockIdP
) -> None:
    without_the_middleware(settings)
    bad = client.get("/api/me", **bearer("not-a-token"))
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad["WWW-Authenticate"]
    idp.outage(503)  # before the bridge ever had the provider's keys
    down = client.get("/api/me", **bearer(idp.mint(sub="ada")))
    assert down.status_code == 503
    assert down["Retry-After"] == "5"


def test_drf_alone_gives_a_malformed_header_its_challenge(
    settings: Any, client: Client, bridge: Bridge
) -> None:
    without_the_middleware(settings)
    for header in ("Bearer ", "Bearer one two"):
        bad = client.get("/api/me", HTTP_AUTHORIZATION=header)
        assert bad.status_code == 400
        assert 'error="invalid_request"' in bad["WWW-Authenticate"]  # RFC 6750 §3.1, as the middleware


def test_a_stale_session_cookie_is_no_credential(settings: Any, idp: MockIdP, transactional_db: None) -> None:
    """A revoked session cookie (a "sign out everywhere" elsewhere) answered every page with
    401, the sign-in page included: the browser was locked out until the cookie expired."""
    from conftest import SESSION_KEY, federation_config

    from federation.django import get_bridge, reset_bridge
    from federation.django.conf import get_guard

    settings.FEDERATION = {
        **settings.FEDERATION,
        "config": federation_config(idp, web={"public_url": "https://testserver"}),
        "environ": {"SESSION_KEY": SESSION_KEY},
        "bridge_options": {"http_client": idp.client(), "clock": idp.clock},
    }
    bridge = get_bridge()
    try:
        session = bridge.exchange(idp.mint(sub="ada"))
        browser = Client()
        browser.cookies[get_guard().cookie_names[0]] = session.access_token
        assert browser.get("/whoami", secure=True).json()["via"] == "token"
        bridge.revoke(session.access_token)
        stale = browser.get("/whoami", secure=True)
        assert stale.status_code == 302  # anonymous: login_required sends it to sign in
        assert stale["Location"].startswith(settings.LOGIN_URL)
        assert browser.get("/auth/login/corp", secure=True).status_code == 302
        refused = browser.get("/whoami", secure=True, **bearer(session.access_token))
        assert refused.status_code == 401  # the same token as a bearer credential: the caller's error
    finally:
        reset_bridge()


def test_additive_sync_only_adds_groups(settings: Any, bridge: Bridge, idp: MockIdP) -> None:
    mapping = {
        "version": 1,
        "roles": {
            "sync": "additive",
            "privileged": ["staff", "admin"],  # the project's staff_roles and superuser_roles
            "rules": [
                {
                    "name": "auditors",
                    "grant": ["auditor"],
                    "when": {"claim": "groups", "contains": "auditors"},
                }
            ],
        },
    }
    settings.FEDERATION = {
        **settings.FEDERATION,
        "config": {**settings.FEDERATION["config"], "mapping": mapping},
    }
    from federation.django import get_bridge

    additive = get_bridge()
    result = additive.login(idp.mint(sub="ada", groups=["auditors"]))
    user: Any = get_user_model().objects.get(pk=result.user.id)
    user.groups.add(Group.objects.create(name="hand-picked"))
    additive.login(idp.mint(sub="ada", groups=[]))
    assert set(user.groups.values_list("name", flat=True)) == {"auditor", "hand-picked"}
