"""The pytest plugin (``pytest11`` entry point), proven in fresh pytest runs."""

from __future__ import annotations

pytest_plugins = ["pytester"]

import pytest  # noqa: E402 - pytest_plugins must come first


def test_fixtures_come_from_the_entry_point_without_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from federation.testing import FrozenClock, MockIdP

        def test_mock_idp_is_installed(mock_idp):
            idp = mock_idp(issuer="https://login.test", audience="app")
            assert isinstance(idp, MockIdP) and idp.installed_now
            assert httpx.get("https://login.test/jwks").json() == idp.jwks()
            with pytest.raises(httpx.ConnectError, match="no MockIdP serves"):
                httpx.get("https://somewhere-else.test/")

        def test_bridge_from_config_accepts_and_rejects(mock_idp):
            from federation import Bridge
            from federation.errors import TokenExpired
            idp = mock_idp()
            with Bridge.from_dict(idp.bridge_config()) as bridge:
                assert bridge.verify(idp.mint(sub="u1")).subject == "u1"
                with pytest.raises(TokenExpired):
                    bridge.verify(idp.mint(expired=True))

        def test_federation_clock(mock_idp, federation_clock):
            assert isinstance(federation_clock, FrozenClock) and federation_clock() == 1_800_000_000
            idp = mock_idp(clock=federation_clock)
            with idp.bridge() as bridge:
                token = idp.mint(lifetime=60)
                assert bridge.verify(token).subject == "user-1"
                federation_clock.advance(200)
                with pytest.raises(Exception, match="expired"):
                    bridge.verify(token)

        def test_not_installed_and_providers(mock_idp):
            idp = mock_idp(install=False)
            assert not idp.installed_now
            oidc = mock_idp.for_provider("oidc", issuer="https://o.test", audience="x")
            assert oidc.installed_now and mock_idp.made == (idp, oidc)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_fixtures_clean_up_after_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from federation.testing import MockIdP

        LEFT = {}

        def test_leaves_things_running(mock_idp):
            idp = mock_idp()  # installed through respx
            background = mock_idp(install=False)
            LEFT["url"] = background.serve().__enter__()  # never exited by the test
            LEFT["client"] = idp.client()
            assert httpx.get(idp.jwks_uri).status_code == 200

        def test_everything_was_undone():
            # respx is gone: a fresh loopback server is reached for real ...
            other = MockIdP()
            with other.serve() as url:
                assert httpx.get(url + "/jwks").json() == other.jwks()
            # ... and the server left running by the previous test was stopped
            with pytest.raises(httpx.ConnectError):
                httpx.get(LEFT["url"] + "/jwks")
            assert LEFT["client"].is_closed
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_fixtures_do_not_clash_with_project_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from federation.testing import FrozenClock, MockIdP

        @pytest.fixture
        def clock():
            return FrozenClock(1_000)

        @pytest.fixture
        def idp(clock):
            return MockIdP(issuer="https://project.test", clock=clock)
        """
    )
    pytester.makepyfile(
        """
        def test_both(idp, clock, mock_idp, federation_clock):
            assert idp.issuer == "https://project.test" and clock() == 1_000
            assert federation_clock() == 1_800_000_000
            assert mock_idp().issuer == "https://idp.test"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_needs_it(mock_idp):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:federation", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mock_idp' not found*"])


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["mock_idp -- *pytest_plugin.py*", "*factory of mock identity providers*", "federation_clock -- *"]
    )
