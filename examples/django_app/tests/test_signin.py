"""The browser sign-in through Django's test client: /auth/login, the provider, /auth/callback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from federation import Bridge
from federation.testing import MockIdP

pytestmark = pytest.mark.django_db(transaction=True)


def at_provider(idp: MockIdP, location: str) -> str:
    """The browser at the provider's authorization endpoint: where it is sent back to."""
    with idp.client() as browser:
        answer = browser.get(location)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith("http://testserver/auth/callback/corp?")
    return back


def sign_in(client: Client, idp: MockIdP, next_url: str = "/whoami") -> Any:
    start = client.get("/auth/login/corp", {"next": next_url})
    assert start.status_code == 302, start.content
    assert start["Location"].startswith(f"{idp.issuer}/authorize?")
    return client.get(at_provider(idp, start["Location"]))


def test_sign_in_ends_in_a_django_session(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    idp.approve("ada", email="ada@example.com", email_verified=True, groups=["auditors"])
    client.get("/auth/login/corp")  # a session exists before: its key must change at login
    before = client.session.session_key
    done = sign_in(client, idp)
    assert done.status_code == 302 and done["Location"] == "/whoami"
    assert client.session.session_key != before
    me = client.get("/whoami").json()
    assert me["via"] == "session" and me["email"] == "ada@example.com"
    assert me["groups"] == ["auditor"]
    assert client.get("/api/reports").status_code == 200  # DRF's SessionAuthentication, roles from groups


def test_a_foreign_redirect_target_is_refused(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        done = sign_in(client, idp, target)
        assert done.status_code == 302
        assert done["Location"] == "/whoami", target  # LOGIN_REDIRECT_URL


def test_a_callback_without_this_browsers_state_is_refused(
    client: Client, bridge: Bridge, idp: MockIdP
) -> None:
    start = Client().get("/auth/login/corp")  # another browser started it
    back = at_provider(idp, start["Location"])
    refused = client.get(back)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert "_auth_user_id" not in client.session


def test_a_state_is_used_once(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    start = client.get("/auth/login/corp")
    back = at_provider(idp, start["Location"])
    assert client.get(back).status_code == 302
    assert client.get(back).status_code == 400


def test_a_restored_session_cookie_does_not_reopen_a_spent_state(
    client: Client, bridge: Bridge, idp: MockIdP, settings: Any
) -> None:
    """With cookie-held sessions (signed_cookies), the callback forgets the state only in the
    cookie it rewrites; the copy from before must not take the code to the provider again."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    start = client.get("/auth/login/corp")
    back = at_provider(idp, start["Location"])
    earlier = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get(back).status_code == 302
    client.cookies[settings.SESSION_COOKIE_NAME] = earlier
    refused = client.get(back)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert len(idp.requests_to("token")) == 1


def test_a_response_naming_another_issuer_is_refused(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """RFC 9207: the callback's iss must be the server the browser was sent to; the code
    never goes to the token endpoint otherwise."""
    for forged in ("&iss=https%3A%2F%2Fevil.example", ""):
        start = client.get("/auth/login/corp")
        back = at_provider(idp, start["Location"])
        kept = "&".join(p for p in back.split("?", 1)[1].split("&") if not p.startswith("iss="))
        refused = client.get(back.split("?", 1)[0] + "?" + kept + forged)
        assert refused.status_code == 400, forged
        assert refused.json()["error"] == "issuer_mismatch"
    assert idp.requests_to("token") == []
    assert "_auth_user_id" not in client.session


def test_metadata_of_another_issuer_is_not_used(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """OIDC Discovery §4.3: a discovery document must name the issuer it was fetched for."""
    document = {**idp.discovery_document(), "issuer": "https://evil.example"}
    idp.outage(body=json.dumps(document).encode(), only="discovery")
    refused = client.get("/auth/login/corp")
    assert refused.status_code == 503
    assert refused.json()["error"] == "keyset_unavailable"
    assert idp.requests_to("authorize") == []


def test_a_provider_answer_past_the_bound_is_not_read(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """keys.max_response_bytes (256 KiB by default) bounds the sign-in's reads too."""
    idp.outage(body=b" " * (300 * 1024) + json.dumps(idp.discovery_document()).encode(), only="discovery")
    refused = client.get("/auth/login/corp")
    assert refused.status_code == 503
    assert refused.json()["error"] == "keyset_unavailable"


def test_max_age_asks_for_a_recent_sign_in(
    client: Client, bridge: Bridge, idp: MockIdP, settings: Any
) -> None:
    """login.max_age: the request carries it and the id token's auth_time must be that recent."""
    from federation.django import reset_bridge

    settings.FEDERATION["config"]["issuers"][0]["login"]["max_age"] = 300
    reset_bridge()  # the next request builds the bridge from the changed config
    start = client.get("/auth/login/corp")
    assert "max_age=300" in start["Location"]
    idp.approve("ada", auth_time=int(idp.clock()) - 1000)
    refused = client.get(at_provider(idp, start["Location"]))
    assert refused.status_code == 401
    assert refused.json()["error"] == "auth_too_old"
    assert "_auth_user_id" not in client.session


def test_login_prompt_is_asked_of_the_provider(
    client: Client, bridge: Bridge, idp: MockIdP, settings: Any
) -> None:
    """login.prompt: a provider that ignores max_age still signs the user in again on prompt=login."""
    from urllib.parse import parse_qs, urlsplit

    from federation.django import reset_bridge

    settings.FEDERATION["config"]["issuers"][0]["login"]["prompt"] = ["login", "consent"]
    reset_bridge()
    start = client.get("/auth/login/corp")
    assert parse_qs(urlsplit(start["Location"]).query)["prompt"] == ["login consent"]
    idp.approve("ada")
    assert client.get(at_provider(idp, start["Location"])).status_code == 302
    assert "_auth_user_id" in client.session


def test_login_userinfo_completes_the_id_tokens_claims(
    client: Client, bridge: Bridge, idp: MockIdP, settings: Any
) -> None:
    """login.userinfo: a provider that leaves email out of its id tokens still gives one."""
    from federation.django import reset_bridge

    settings.FEDERATION["config"]["issuers"][0]["login"]["userinfo"] = True
    reset_bridge()
    idp.approve("ada", userinfo={"email": "ada@example.com", "email_verified": True})
    done = sign_in(client, idp)
    assert done.status_code == 302, done.content
    assert client.get("/whoami").json()["email"] == "ada@example.com"
    (asked,) = idp.requests_to("userinfo")
    assert asked.headers["authorization"].startswith("Bearer ")

    idp.approve("ada", userinfo={"sub": "someone-else", "email": "eve@example.com"})
    refused = sign_in(Client(), idp)
    assert refused.status_code == 401
    assert refused.json()["error"] == "userinfo_subject_mismatch"


def test_a_provider_refusal_is_403(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    idp.deny("access_denied")
    done = sign_in(client, idp)
    assert done.status_code == 403
    assert done.json()["error"] == "provider_refused"


def test_a_disabled_user_cannot_sign_in(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    idp.approve("ada")
    assert sign_in(client, idp).status_code == 302
    user: Any = get_user_model().objects.get(federated_identities__subject="ada")
    user.is_active = False
    user.save()
    assert client.get("/whoami").status_code == 302  # the session's user is inactive: to the login page
    fresh = Client()
    refused = sign_in(fresh, idp)
    assert refused.status_code == 403
    assert "_auth_user_id" not in fresh.session


def test_an_unknown_issuer_is_404(client: Client, bridge: Bridge) -> None:
    assert client.get("/auth/login/nobody").status_code == 404


def test_sso_url_token_signs_in_once(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(sub="ada", jti="one-time")
    done = client.get("/auth/sso", {"token": token, "next": "/whoami"})
    assert done.status_code == 302 and done["Location"] == "/whoami"
    assert done["Referrer-Policy"] == "no-referrer"
    assert client.get("/whoami").json()["via"] == "session"
    replay = Client().get("/auth/sso", {"token": token})
    assert replay.status_code == 401
    assert replay.json()["error"] == "url_token_replayed"


def test_logout_is_a_csrf_checked_post(bridge: Bridge, idp: MockIdP) -> None:
    client = Client(enforce_csrf_checks=True)
    assert sign_in(client, idp).status_code == 302
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 403  # no CSRF token
    secret = "s" * 32  # what a page's {% csrf_token %} would have put in the cookie and the form
    client.cookies["csrftoken"] = secret
    done = client.post("/auth/logout", {"next": "/"}, HTTP_X_CSRFTOKEN=secret)
    assert done.status_code == 302 and done["Location"] == "/"
    assert "_auth_user_id" not in client.session


def _user_of(client: Client) -> Any:
    return client.session.get("_auth_user_id")


def test_sign_out_everywhere_ends_the_django_session(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """revoke_user (here, an identity provider's back-channel logout) ends a Django session too."""
    idp.approve("ada")
    assert sign_in(client, idp).status_code == 302
    assert client.get("/whoami").json()["via"] == "session"
    user_id = str(_user_of(client))
    bridge.revoke_user(user_id, reason="signed out everywhere")
    assert client.get("/whoami").status_code == 302  # login_required: back to the sign-in
    assert _user_of(client) is None
    early = idp.mint(sub="ada", jti="minted-before-the-revoke", iat=int(idp.clock()) - 5)
    refused = Client().get("/auth/sso", {"token": early})  # a token of before: no new session
    assert (refused.status_code, refused.json()["error"]) == (401, "revoked")


def test_a_back_channel_logout_ends_the_django_session(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    idp.approve("ada")
    assert sign_in(client, idp).status_code == 302
    event = {"http://schemas.openid.net/event/backchannel-logout": {}}
    token = idp.mint(sub="ada", jti="op-logout-1", events=event, nonce=None, headers={"typ": "logout+jwt"})
    provider = Client(enforce_csrf_checks=True)  # the provider's server: no CSRF token, no cookie
    done = provider.post("/auth/backchannel-logout", {"logout_token": token})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    assert client.get("/whoami").status_code == 302
    again = provider.post("/auth/backchannel-logout", {"logout_token": token})
    assert (again.status_code, again.json()["code"]) == (400, "logout_token_replayed")
    assert provider.post("/auth/backchannel-logout", {"logout_token": "x"}).status_code == 400


def test_repeated_sign_in_parameters_are_refused(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """RFC 6749 §3.1: with two copies the last won (state=forged&state=<real> signed in)."""
    first, second = idp.mint(sub="ada", jti="first-copy"), idp.mint(sub="ada", jti="second-copy")
    assert client.get(f"/auth/sso?token={first}&token={second}").status_code == 400
    start = client.get("/auth/login/corp")
    back = at_provider(idp, start["Location"])
    assert client.get(back.replace("state=", "state=forged&state=", 1)).status_code == 400


def test_a_sign_in_after_a_revocation_elsewhere_stays_signed_in(bridge: Bridge, idp: MockIdP) -> None:
    """The sign-in records the store's generation; memory may still hold the one before a
    revocation another process made: the fresh session was logged out for user_check seconds."""
    idp.approve("ada")
    first = Client()
    assert sign_in(first, idp).status_code == 302
    user_id = str(_user_of(first))
    assert first.get("/whoami").status_code == 200  # this process remembers the generation
    bridge.sessions.store.bump_generation(user_id)  # another process's revoke_user
    second = Client()
    assert sign_in(second, idp).status_code == 302
    assert second.get("/whoami").json()["via"] == "session"
