"""A built-in provider's module is imported only when a config names it (issue 16).

Each check runs in a fresh interpreter: what matters is which modules a process
has imported, and the registry and the issuer union are process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

OKTA = {"provider": "okta", "domain": "dev-123.okta.com", "client_ids": ["0oa1"]}
GOOGLE = {"provider": "google", "client_ids": ["1234.apps.googleusercontent.com"]}
OIDC = {"issuer": "https://idp.test", "audiences": ["app"], "jwks_uri": "https://idp.test/jwks"}


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _loaded_providers(code: str) -> list[str]:
    """The providers whose modules ``code`` imported (``code`` prints nothing)."""
    out = _run(
        textwrap.dedent(code)
        + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[2] for m in sys.modules "
        "if m.startswith('federation.providers.')})))\n"
    )
    return list(json.loads(out.splitlines()[-1]))


def test_a_bridge_of_one_generic_issuer_imports_no_other_provider() -> None:
    loaded = _loaded_providers(
        """
        from federation import Bridge
        from federation.testing import MockIdP
        idp = MockIdP(issuer="https://idp.test", audience="app")
        bridge = Bridge.from_dict(idp.bridge_config(), http_client=idp.client())
        assert bridge.verify(idp.mint(sub="u1")).subject == "u1"
        import sys
        assert "asyncio" not in sys.modules  # the async shells import it, for async callers only
        """
    )
    assert loaded == ["oidc"]


def test_a_config_naming_okta_imports_okta_and_nothing_else() -> None:
    loaded = _loaded_providers(
        f"""
        from federation.config import load_config
        config = load_config({json.dumps({"issuers": [OKTA]})})
        assert type(config.issuers[0]).__name__ == "OktaIssuerConfig"
        """
    )
    assert loaded == ["oidc", "okta"]


def test_providers_named_one_after_another_each_extend_the_issuer_union() -> None:
    out = _run(
        f"""
        from federation.config import load_config
        for doc in ({json.dumps({"issuers": [OIDC]})}, {json.dumps({"issuers": [OKTA]})},
                    {json.dumps({"issuers": [GOOGLE, OKTA, OIDC]})}, {json.dumps({"issuers": [OIDC]})}):
            print(",".join(issuer.provider for issuer in load_config(doc).issuers))
        """
    )
    assert out.split() == ["oidc", "okta", "google,okta,oidc", "oidc"]


@pytest.mark.parametrize(
    "how",
    [
        "BridgeConfig(issuers=[GoogleConfig(client_ids=['1234.apps.googleusercontent.com'])])",
        "BridgeConfig(**DOC)",
        "BridgeConfig.model_validate(DOC)",
        "BridgeConfig.model_validate_json(json.dumps(DOC))",
        "BridgeConfig.model_validate_strings(DOC)",
    ],
)
def test_every_way_of_building_the_model_directly_knows_every_provider(how: str) -> None:
    out = _run(
        f"""
        import json
        from federation.config import BridgeConfig
        from federation.providers import GoogleConfig
        DOC = {json.dumps({"issuers": [GOOGLE]})}
        print({how}.issuers[0].provider)
        """
    )
    assert out.split() == ["google"]


# Documents whose errors must read the same whichever providers a process had loaded.
BAD = [
    {"issuers": [{**OKTA, "domian": "x"}]},
    {"issuers": [{**OKTA, "domain": "https://dev-123.okta.com"}]},
    {"issuers": [{**OIDC, "client_ids": ["x"]}]},
    {"issuers": [{**OIDC, "jwks_uri": "http://idp.test/jwks"}]},
    {"issuers": [{"provider": "okat", "domain": "dev-123.okta.com"}]},
    {"issuers": [{"provider": 7}]},
    {"issuers": ["not an entry"]},
    {"issuers": [GOOGLE, {**GOOGLE, "hosted_domains": "example.com"}]},
]


def _errors(preload: str) -> list[str]:
    out = _run(
        f"""
        import json
        from federation import plugins
        from federation.config import load_config
        from federation.errors import ConfigError
        {preload}
        for doc in {json.dumps(BAD)}:
            try:
                load_config(doc)
            except ConfigError as exc:
                print(json.dumps([str(exc), exc.field]))
            else:
                print(json.dumps("accepted"))
        """
    )
    return out.splitlines()


def test_errors_are_the_same_with_only_the_named_providers_loaded_as_with_all() -> None:
    lazy, full = _errors(""), _errors("plugins.plugins()")
    assert len(lazy) == len(BAD) and "accepted" not in lazy
    assert lazy == full
    assert "known: oidc, azure_ad" in lazy[4] and "okta" in lazy[4]  # every provider named, unloaded too


def test_the_registry_names_providers_without_importing_them() -> None:
    out = _run(
        """
        import sys
        from federation import plugins
        names = plugins.names()
        assert not [m for m in sys.modules if m.startswith("federation.providers.")], sys.modules
        assert plugins.get("keycloak").name == "keycloak"
        assert [p.name for p in plugins.loaded()] == ["keycloak"]
        assert plugins.get("nope") is None and plugins.get(None) is None
        everything = [p.name for p in plugins.plugins()]
        assert everything == list(names), (everything, names)
        print(" ".join(names))
        """
    )
    assert out.split()[:2] == ["oidc", "azure_ad"] and "okta" in out.split()


def test_issuer_config_is_still_the_union_of_every_provider() -> None:
    out = _run(
        """
        import typing
        from federation.config import IssuerConfig
        union = typing.get_args(IssuerConfig)[0]
        print(" ".join(sorted(m.__name__ for m in typing.get_args(union))))
        """
    )
    assert "OktaIssuerConfig" in out.split() and "OidcIssuerConfig" in out.split() and len(out.split()) == 8


def test_threads_naming_different_providers_at_once_each_get_their_model() -> None:
    # Each first use of a provider imports it and rebuilds the issuer union while other
    # threads validate: every document must still come out as its own provider's model.
    from federation import plugins
    from federation.testing import MockIdP

    docs = {name: MockIdP.for_provider(name).bridge_config() for name in plugins.names()}
    out = _run(
        f"""
        import json, threading
        from federation.config import load_config
        docs = json.loads({json.dumps(json.dumps(docs))})
        start = threading.Barrier(len(docs) * 2)
        results, errors = {{}}, []

        def load(name, slot):
            start.wait()
            try:
                for _ in range(3):
                    results[(name, slot)] = load_config(docs[name]).issuers[0].provider
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=load, args=(n, s)) for n in docs for s in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(got == name for (name, _), got in results.items()) and len(results) == len(threads)
        print(len(results))
        """
    )
    assert out.split() == [str(2 * len(docs))]
