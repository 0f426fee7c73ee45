"""Fixtures of the web tests (the environment itself is in webenv.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from webenv import WebEnv, build_env

from federation.testing import FrozenClock


@pytest.fixture
def web_env(federation_clock: FrozenClock) -> Iterator[WebEnv]:
    env = build_env(federation_clock)
    with env.client:
        yield env
    env.bridge.close()
    env.idp.close()


@pytest.fixture
def make_web_env(federation_clock: FrozenClock) -> Iterator[Callable[..., WebEnv]]:
    built: list[WebEnv] = []

    def make(**options: Any) -> WebEnv:
        env = build_env(federation_clock, **options)
        built.append(env)
        return env

    yield make
    for env in built:
        env.client.close()
        env.bridge.close()
        env.idp.close()
