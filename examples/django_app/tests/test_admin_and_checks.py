"""The admin shows federated identities; the system checks and federation_check catch mistakes."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.test import Client, override_settings

from federation import Bridge
from federation.django.checks import check_settings
from federation.testing import MockIdP

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_admin_lists_federated_identities(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    bridge.login(idp.mint(sub="ada-subject", email="ada@example.com"))
    admin: Any = get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used")
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/admin/federation/federatedidentity/")
    assert page.status_code == 200
    assert "ada-subject" in page.content.decode()
    assert client.get("/admin/federation/auditrecord/").status_code == 200


def test_the_audit_trail_cannot_be_deleted_from_the_admin(
    client: Client, bridge: Bridge, idp: MockIdP
) -> None:
    from federation.django.models import AuditRecord

    bridge.login(idp.mint(sub="ada-subject"))
    record = AuditRecord.objects.first()
    assert record is not None
    admin: Any = get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used")
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    client.post(f"/admin/federation/auditrecord/{record.pk}/delete/", {"post": "yes"})
    client.post(
        "/admin/federation/auditrecord/",
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert AuditRecord.objects.filter(pk=record.pk).exists()


def test_the_profile_admin_edits_nothing(client: Client, bridge: Bridge, idp: MockIdP) -> None:
    """verified_email was an editable field: any address could be made to read as verified."""
    from federation.django.models import FederatedProfile

    user_id = bridge.login(idp.mint(sub="mallory", email="mallory@example.com")).user.id
    profile = FederatedProfile.objects.get(user_id=user_id)
    admin: Any = get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used")
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    url = f"/admin/federation/federatedprofile/{profile.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="verified_email"' not in page and 'name="email_verified"' not in page
    client.post(url, {"verified_email": "ceo@example.com", "email_verified": "on"})
    profile.refresh_from_db()
    assert profile.verified_email != "ceo@example.com"


def test_an_admin_role_makes_a_django_superuser(bridge: Bridge, idp: MockIdP) -> None:
    result = bridge.login(idp.mint(sub="boss", groups=["root"]))
    user: Any = get_user_model().objects.get(pk=result.user.id)
    assert user.is_superuser and user.is_staff


def test_the_projects_settings_pass_the_checks(bridge: Bridge) -> None:
    assert [m.id for m in check_settings()] == []


def test_checks_name_the_usual_mistakes(settings: Any, bridge: Bridge) -> None:
    middleware = [m for m in settings.MIDDLEWARE if "federation" not in m]
    with override_settings(MIDDLEWARE=["federation.django.middleware.FederationMiddleware", *middleware]):
        assert "federation.E003" in [m.id for m in check_settings()]
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]):
        assert "federation.E002" in [m.id for m in check_settings()]
    with override_settings(FEDERATION={"config": {"issuers": "nope"}}):
        assert "federation.E001" in [m.id for m in check_settings()]
    # What only building the bridge finds: a mapping file that is not there, and a staff
    # role the mapping does not list as privileged (start-up refuses both).
    config = settings.FEDERATION["config"]
    unusable = [{**config, "mapping": "no-such-mapping.yaml"}, {**config, "mapping": {"version": 1}}]
    for broken in unusable:
        with override_settings(FEDERATION={**settings.FEDERATION, "config": broken}):
            assert "federation.E001" in [m.id for m in check_settings()], broken["mapping"]


def test_federation_check_probes_keys_and_tables(bridge: Bridge) -> None:
    out = StringIO()
    call_command("federation_check", stdout=out)
    text = out.getvalue()
    assert "probe    keys of https://login.example.test: fetched" in text
    assert "probe    storage: ok" in text


def test_federation_check_fails_loudly_when_keys_are_down(bridge: Bridge, idp: MockIdP) -> None:
    idp.outage(503)
    with pytest.raises(CommandError, match="unavailable: keys of"):
        call_command("federation_check", stdout=StringIO())


def test_the_shipped_migrations_match_the_models(bridge: Bridge) -> None:
    call_command("makemigrations", "federation", "--check", "--dry-run", stdout=StringIO())


def test_one_bridge_per_process(bridge: Bridge) -> None:
    from federation.django import get_bridge

    assert get_bridge() is bridge is get_bridge()


def test_federation_check_names_a_broken_setting(settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings.FEDERATION = {"config": {"issuers": "not a list"}}
    with pytest.raises(CommandError, match="configuration: "):
        call_command("federation_check", stdout=StringIO())
    # As manage.py runs it, system checks first: federation.E001's hint names this command,
    # which must then say what is wrong instead of stopping at E001 itself.
    command = load_command_class("federation.django", "federation_check")
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "federation_check", "--no-probe"])
    assert exited.value.code == 1
    said = capsys.readouterr().err
    assert "configuration: " in said and "SystemCheckError" not in said
    settings.FEDERATION = {"config": {"issuers": []}, "surprise": 1}
    with pytest.raises(CommandError, match="unknown keys: surprise"):
        call_command("federation_check", stdout=StringIO())


def test_user_fields_may_not_name_a_column_the_store_writes_itself(settings: Any) -> None:
    """The username is set once and unique, the email is the mapping's own ``email``: an
    attribute copied over them blanked every user's (and the second new user found the
    empty username taken)."""
    from federation.django.conf import federation_settings
    from federation.errors import ConfigError

    for field in ("username", "email", "id", "is_staff", "password"):
        settings.FEDERATION = {**settings.FEDERATION, "user_fields": ["first_name", field]}
        with pytest.raises(ConfigError, match=f"may not name {field}"):
            federation_settings()
