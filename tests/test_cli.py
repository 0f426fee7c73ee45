"""The ``federation`` command: ``demo`` for every provider (text and JSON), ``verify``
against a config file (the CLI's Bridge makes its own httpx client, so the mock
is installed through respx with ``with idp:``), ``check-config`` and ``version``."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from federation import __version__
from federation.cli import main
from federation.config import load_config
from federation.testing import MockIdP

# provider -> (a line of its config entry, issues JWT access tokens, the three rejection codes)
DEMOS: dict[str, tuple[str, bool, tuple[str, str, str]]] = {
    "oidc": ("issuer: https://idp.example.test", True, ("expired", "invalid_audience", "unknown_key")),
    "cognito": (
        "user_pool_id: eu-west-1_Demo12345",
        True,
        ("expired", "invalid_audience", "wrong_token_type"),
    ),
    "azure_ad": (
        "tenant: aaaabbbb-0000-cccc-1111-dddd2222eeee",
        True,
        ("expired", "invalid_audience", "tenant_not_allowed"),
    ),
    "azure_ad_b2c": ("tenant_name: contoso", True, ("expired", "invalid_audience", "policy_not_allowed")),
    "okta": ("authorization_server: default", True, ("expired", "invalid_audience", "invalid_audience")),
    "keycloak": ("realm: demo", True, ("expired", "invalid_audience", "wrong_token_type")),
    "google": (
        "- example.com",
        False,
        ("expired", "invalid_audience", "hosted_domain_not_allowed"),
    ),
    "firebase": ("project_id: demo-project", False, ("expired", "invalid_audience", "untrusted_issuer")),
}
IDENTITY_FIELDS = ("identity_key", "email", "email_verified", "username", "groups", "roles", "token_type")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def config_block(text: str) -> str:
    """The YAML the text demo prints under 'bridge config', dedented."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("bridge config")) + 1
    end = lines.index("", start)
    return textwrap.dedent("\n".join(lines[start:end])) + "\n"


# -- demo -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(DEMOS))
def test_demo_text(provider: str, tmp_path: Path) -> None:
    entry_line, access, codes = DEMOS[provider]
    code, text = run("demo", "--verify-only", "--provider", provider)
    assert code == 0
    assert f"(provider {provider}), no network" in text.splitlines()[0]
    assert f"- provider: {provider}\n" in text and f"    {entry_line}\n" in text
    assert text.count(f"  provider      {provider}\n") == (2 if access else 1)
    assert "  token_type    id\n" in text
    assert ("  token_type    access\n" in text) is access
    assert ("minted access token" in text) is access and ("no access token:" in text) is not access
    for name in ("identity_key", "email", "username", "groups", "roles"):
        assert f"\n  {name:<13} " in text
    rejections = text.split("rejected, as they should be\n")[1].splitlines()
    assert [line.rsplit("-> ", 1)[1] for line in rejections] == list(codes)
    assert rejections[0].startswith("  expired token ") and rejections[1].startswith(
        "  token for another app "
    )
    # the printed configuration is a valid federation.yaml trusting the profile
    path = tmp_path / "federation.yaml"
    path.write_text(config_block(text))
    assert load_config(path).issuers[0].provider == provider


@pytest.mark.parametrize("provider", sorted(DEMOS))
def test_demo_json(provider: str) -> None:
    _, access, codes = DEMOS[provider]
    code, text = run("demo", "--verify-only", "--provider", provider, "--json")
    assert code == 0
    document = json.loads(text)
    assert document["provider"] == provider
    assert document["config"] == {"issuers": [document["entry"]]}
    assert document["entry"]["provider"] == provider
    profile = load_config(document["config"]).issuers[0]
    verified = document["verified"]
    assert (verified["provider"], verified["token_type"]) == (provider, "id")
    assert verified["issuer"] in profile.trusted_issuers
    assert set(IDENTITY_FIELDS) <= set(verified)
    assert verified["identity_key"][1]  # (namespace, id)
    if access:
        assert document["verified_access"]["token_type"] == "access"
        assert document["verified_access"]["identity_key"] == verified["identity_key"]
    else:
        assert document["verified_access"] is None
    assert [r["code"] for r in document["rejected"]] == list(codes)


def test_demo_uses_the_profile_vocabulary() -> None:
    entries = {
        p: json.loads(run("demo", "--verify-only", "--provider", p, "--json")[1])["entry"] for p in DEMOS
    }
    assert entries["cognito"] == {
        "provider": "cognito",
        "user_pool_id": "eu-west-1_Demo12345",
        "client_ids": ["demoappclient42"],
    }
    assert entries["firebase"] == {"provider": "firebase", "project_id": "demo-project"}
    assert entries["keycloak"]["base_url"] == "https://sso.example.com"
    assert entries["okta"]["domain"] == "dev-123.okta.com"
    assert entries["azure_ad"]["tenant"] == "aaaabbbb-0000-cccc-1111-dddd2222eeee"
    assert entries["google"]["hosted_domains"] == ["example.com"]
    assert all("issuer" not in e for p, e in entries.items() if p != "oidc")


def test_demo_defaults_to_oidc_and_keeps_its_output() -> None:
    code, text = run("demo", "--verify-only")
    assert code == 0
    assert "trusted issuer   https://idp.example.test  (audience 'demo-app')" in text
    assert "  subject       user-42\n" in text and "  groups        staff\n" in text
    assert "  email         ada@example.com (email_verified: True)\n" in text
    assert "token signed with an unknown key" in text


@pytest.mark.parametrize("provider", ["oidc", "keycloak"])
def test_demo_alg(provider: str) -> None:
    code, text = run("demo", "--provider", provider, "--alg", "ES256", "--json")
    assert code == 0
    assert json.loads(text)["verified"]["algorithm"] == "ES256"


def test_demo_alg_the_profile_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run("demo", "--provider", "cognito", "--alg", "EdDSA")
    assert (code, text) == (2, "")
    assert "the cognito profile accepts RS256 only (--alg EdDSA)" in capsys.readouterr().err


def test_demo_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--provider", "auth0"], out=io.StringIO())
    assert info.value.code == 2
    assert "invalid choice: 'auth0'" in capsys.readouterr().err


# -- verify -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[MockIdP]:
    """A Cognito pool on the real clock: the CLI's Bridge reads the wall clock."""
    idp = MockIdP.for_provider("cognito", user_pool_id="eu-central-1_CliTest1", client_id="cliclient")
    yield idp
    idp.close()


@pytest.fixture
def config_file(pool: MockIdP, tmp_path: Path) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(pool.bridge_config(), sort_keys=False))
    return path


def test_verify(pool: MockIdP, config_file: Path) -> None:
    with pool:
        code, text = run("verify", "--config", str(config_file), pool.mint(token_type="access"))
    assert code == 0
    identity = json.loads(text)
    assert (identity["provider"], identity["token_type"], identity["username"]) == (
        "cognito",
        "access",
        "my-test-user",
    )
    assert identity["identity_key"] == [pool.issuer, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]


@pytest.mark.parametrize("dash", [True, False])
def test_verify_reads_standard_input(
    pool: MockIdP, config_file: Path, monkeypatch: pytest.MonkeyPatch, dash: bool
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(pool.mint() + "\n"))
    with pool:
        code, text = run("verify", "-c", str(config_file), *(["-"] if dash else []))
    assert code == 0 and json.loads(text)["token_type"] == "id"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdin", ["", "  \n", "terminal"])
def test_verify_without_a_token_says_so(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("never read") if stdin == "terminal" else io.StringIO(stdin))
    code, _ = run("verify", "-c", str(config_file))
    assert code == 1
    assert "no token given" in capsys.readouterr().err


def test_verify_rejects(pool: MockIdP, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pool:
        code, text = run("verify", "-c", str(config_file), pool.mint(token_use="refresh"))
    assert (code, text) == (1, "")
    assert capsys.readouterr().err.startswith("token rejected (wrong_token_type): ")
    with pool:
        assert run("verify", "-c", str(config_file), pool.mint(expired=True))[0] == 1
    assert "token rejected (expired)" in capsys.readouterr().err


def test_verify_keys_unavailable(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    down = MockIdP.for_provider("cognito", user_pool_id="eu-central-1_CliTest1", client_id="cliclient")
    down.outage(status=503)
    with down:
        code, _ = run("verify", "-c", str(config_file), down.mint())
    assert code == 3
    assert capsys.readouterr().err.startswith("issuer keys unavailable (")
    down.close()


# -- check-config, version ----------------------------------------------------------------------------


def test_check_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            issuers:
              - provider: cognito
                user_pool_id: eu-west-1_AbCdEf123
                client_ids: [abc123]
              - provider: google
                client_ids: [1234-x.apps.googleusercontent.com]
            """
        )
    )
    assert run("check-config", "-c", str(path)) == run("check-config", str(path))  # as every command takes it
    code, text = run("check-config", str(path))
    assert code == 0
    assert text == (
        f"{path}: ok (4 issuers)\n"
        "  https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123\n"
        "  https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123\n"
        "  https://accounts.google.com\n"
        "  accounts.google.com\n"
    )


def test_check_config_refuses_mapping_sections_no_issuer_reaches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deny rule under issuers['<iss>/'] (a trailing slash) never ran, and check-config said ok."""
    deny = [{"when": {"claim": "groups", "contains": "blocked"}, "code": "blocked"}]
    (tmp_path / "mapping.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "issuers": {
                    "https://idp.example.test/": {"deny": deny},
                    "accounts.google.com": {"deny": deny},
                },
                "providers": {"okta": {"deny": deny}},
            }
        )
    )
    entries = [
        {
            "provider": "oidc",
            "issuer": "https://idp.example.test",
            "audiences": ["a"],
            "jwks_uri": "https://idp.example.test/k",
        },
        {"provider": "google", "client_ids": ["1234-x.apps.googleusercontent.com"]},
    ]
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump({"issuers": entries, "mapping": "mapping.yaml"}))
    assert run("check-config", str(path))[0] == 2
    error = capsys.readouterr().err
    assert "providers.okta, issuers['https://idp.example.test/'] match no configured issuer" in error
    assert "accounts.google.com" not in error  # Google's other spelling of its issuer: reached
    fixed = {"version": 1, "issuers": {"https://idp.example.test": {"deny": deny}}}
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(fixed))
    assert run("check-config", str(path))[0] == 0


def test_check_config_one_issuer(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("issuers:\n  - provider: firebase\n    project_id: my-project\n")
    assert run("check-config", str(path)) == (
        0,
        f"{path}: ok (1 issuer)\n  https://securetoken.google.com/my-project\n",
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("issuers:\n  - provider: cognito\n    user_pool_id: not-a-pool\n    client_ids: [abc]\n", 3),
        (
            "issuers:\n  - provider: okta\n    domain: dev-1.okta.com\n    client_ids: [a]\n"
            "    colour: red\n",
            5,
        ),
    ],
)
def test_check_config_error_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out = run("check-config", str(path))
    assert (code, out) == (2, "")
    err = capsys.readouterr().err
    assert err.startswith("configuration error: ") and f"{path}:{line}:" in err


def test_version() -> None:
    assert run("version") == (0, f"federation-bridge {__version__}\n")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([], out=io.StringIO())
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_demo_runs_the_whole_path_by_default() -> None:
    code, text = run("demo")
    assert code == 0
    for line in ("created user", "refused: access_denied", "refused: account_disabled", "audit trail"):
        assert line in text
    assert "user_created" in text and "login_succeeded" in text


def test_mapping_and_store_commands_are_wired(tmp_path: Path) -> None:
    code, text = run("schema", "mapping")
    assert code == 0 and json.loads(text)["type"] == "object"
    config = tmp_path / "federation.yaml"
    config.write_text(
        "issuers:\n  - {provider: oidc, issuer: https://idp.test, audiences: [a], jwks_uri: https://idp.test/jwks}\n"
        f"storage: sqlite:///{tmp_path / 'users.db'}\n"
    )
    assert run("db", "init", "--config", str(config))[0] == 0
    code, text = run("users", "list", "--config", str(config))
    assert code == 0
