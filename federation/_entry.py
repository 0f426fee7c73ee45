"""The ``federation`` command's entry point: ``--version`` answers without loading the engine
(a container's health check or a cold start should not pay for httpx and pydantic)."""

from __future__ import annotations

import sys

__all__ = ["main"]

_VERSION_ARGS = (["--version"], ["-V"], ["version"])


def main() -> int:
    """``federation [args]``: the version at once, anything else through :func:`federation.cli.main`."""
    if sys.argv[1:] in _VERSION_ARGS:
        from . import __version__

        sys.stdout.write(f"federation-bridge {__version__}\n")
        return 0
    from .cli import main as run

    return run()
