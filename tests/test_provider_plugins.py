"""A provider added from outside the repository works end to end (issue 11 item 2).

A throwaway distribution ``acme_idp`` is built as a wheel in a temporary folder,
installed with pip into its own target, and used in a subprocess: YAML config,
``MockIdP.for_provider``, ``federation demo --provider`` and a mapping ``$``-name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ACME = textwrap.dedent(
    '''
    from __future__ import annotations

    from typing import Any, Literal

    from federation.plugins import DemoSpec, ProviderPlugin
    from federation.providers import OidcIssuerConfig


    class AcmeConfig(OidcIssuerConfig):  # the generic rules, under its own name
        provider: Literal["acme"] = "acme"  # type: ignore[assignment]


    def _claims(idp: Any, kind: str, now: int) -> dict[str, Any]:
        return {"iss": idp.issuer, "sub": "acme-user", "aud": idp.audience, "acme_org": "org-7"}


    def _shape() -> Any:
        from federation.testing import ProviderShape

        return ProviderShape("acme", claims=_claims)


    SHAPE = None


    def __getattr__(name: str) -> Any:
        if name == "SHAPE_OBJ":
            return _shape()
        raise AttributeError(name)


    PLUGIN = ProviderPlugin(
        name="acme",
        model=AcmeConfig,
        shape="acme_idp:SHAPE_OBJ",
        demo=DemoSpec(
            "Acme identity provider",
            {"issuer": "https://idp.acme.test", "audience": "acme-app"},
            "token signed with an unknown key",
            lambda idp: idp.mint(kid="not-published"),
        ),
        vocabulary={"org": "the Acme organisation (acme_org)"},
        values=lambda claims: {"org": claims.get("acme_org")},
    )
    '''
)

SCRIPT = textwrap.dedent(
    '''
    import subprocess, sys, json
    from pathlib import Path
    from federation import Bridge
    from federation.config import load_config
    from federation.mapping import Mapping
    from federation.testing import MockIdP

    tmp = Path(sys.argv[1])
    (tmp / "federation.yaml").write_text(
        "issuers:\\n  - provider: acme\\n    issuer: https://idp.acme.test\\n    audiences: [acme-app]\\n"
    )
    assert load_config(tmp / "federation.yaml").issuers[0].provider == "acme"
    idp = MockIdP.for_provider("acme", issuer="https://idp.acme.test", audience="acme-app")
    with idp.bridge() as bridge:
        verified = bridge.verify(idp.mint())
    assert verified.provider == "acme" and verified.subject == "acme-user", verified
    mapping = Mapping.from_dict({"version": 1, "attributes": {"org": {"from": "$org"}}})
    result = mapping.apply(verified)
    assert result.attributes["org"] == "org-7", result.attributes
    demo = subprocess.run(
        [sys.executable, "-m", "federation.cli", "demo", "--provider", "acme", "--verify-only", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["verified"]["provider"] == "acme"
    print("ACME OK")
    '''
)


def _wheel(tmp: Path) -> Path:
    wheel = tmp / "acme_idp-0.1-py3-none-any.whl"
    info = "acme_idp-0.1.dist-info"
    files = {
        "acme_idp/__init__.py": ACME,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: acme-idp\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[federation.providers]\nacme = acme_idp:PLUGIN\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


def test_an_installed_provider_distribution_works_end_to_end(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site),
         str(_wheel(tmp_path))],
        check=True, timeout=60,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ACME OK" in done.stdout


def test_runtime_registration_and_a_taken_name_is_refused() -> None:
    script = textwrap.dedent(
        '''
        import types, sys
        from typing import Literal
        from federation import providers
        from federation.config import load_config
        from federation.spi import ProviderProfile

        class RtConfig(providers.OidcIssuerConfig):
            provider: Literal["runtime_idp"] = "runtime_idp"

        providers.register(providers.ProviderPlugin(name="runtime_idp", model=RtConfig))
        config = load_config({"issuers": [{"provider": "runtime_idp", "issuer": "https://rt.test",
                                           "audiences": ["a"]}]})
        assert type(config.issuers[0]) is RtConfig

        class FakeOidc(ProviderProfile):
            provider: Literal["oidc"] = "oidc"

        try:
            providers.register(providers.ProviderPlugin(name="oidc", model=FakeOidc))
        except ValueError as exc:
            assert "already registered" in str(exc), exc
        else:
            raise AssertionError("a taken name was accepted")
        print("RUNTIME OK")
        '''
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "RUNTIME OK" in done.stdout


def test_unknown_provider_is_still_refused_with_the_known_names() -> None:
    from federation.config import load_config
    from federation.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [{"provider": "nope", "issuer": "https://x.test", "audiences": ["a"]}]})
    assert "cognito" in str(info.value)


def test_a_broken_installed_plugin_is_a_config_error_naming_it(tmp_path: Path) -> None:
    # A distribution whose entry point names a module that is not there (a broken install).
    info = tmp_path / "acme_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[federation.providers]\nacme = acme_missing_module:PLUGIN\n")
    script = textwrap.dedent(
        '''
        for attempt in range(2):  # the same typed error on every use, never a partial registry
            try:
                import federation.config
                federation.config.load_config({"issuers": [{"issuer": "https://x.test", "audiences": ["a"]}]})
            except Exception as exc:
                assert type(exc).__name__ == "ConfigError" and exc.code == "config_error", repr(exc)
                assert "'acme'" in str(exc) and "acme_missing_module:PLUGIN" in str(exc), exc
                assert "ModuleNotFoundError" in str(exc), exc
            else:
                raise AssertionError("a broken plugin was ignored")
        print("BROKEN OK")
        '''
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "BROKEN OK" in done.stdout
