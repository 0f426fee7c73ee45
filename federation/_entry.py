"""The ``federation`` command's entry point: ``--version`` answers without loading the engine
(a container's health check or a cold start should not pay for httpx and pydantic)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["main"]

_VERSION_ARGS = (["--version"], ["-V"], ["version"])


def main() -> int:
    """``federation [args]``: the version at once, anything else through :func:`federation.cli.main`."""
    if sys.argv[1:] in _VERSION_ARGS:
        from . import __version__

        return _print_version(f"federation-bridge {__version__}\n")
    from .cli import main as run

    return run()


def _print_version(line: str) -> int:
    """``line`` on stdout, with the exit codes of :mod:`federation.cli` (not imported: it is the
    engine) when stdout is closed (2), cannot be written (2) or is a pipe closed early (141)."""
    stdout = sys.stdout
    try:
        if stdout is None:  # started with stdout closed (`>&-`)
            raise ValueError("closed")
        stdout.write(line)
        stdout.flush()  # a failure shows here, not in the interpreter's shutdown
    except BrokenPipeError:
        discard_stdout(stdout)
        return 141
    except (OSError, ValueError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or "closed"
        if sys.stderr is not None:
            sys.stderr.write(f"federation: cannot write standard output ({reason})\n")
        discard_stdout(stdout)
        return 2
    return 0


def discard_stdout(stream: TextIO | None) -> None:
    """After ``| head`` closed the pipe, or a write failed: point stdout at devnull, so the
    interpreter's final flush does not fail again (the recipe of Python's signal documentation)."""
    if stream is None or stream is not sys.stdout:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor: nothing to flush later
        pass
