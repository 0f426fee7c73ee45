"""Reading the files a deployment's configuration names: the config and mapping files, key
and secret files, a key set file and the CLI's claims file.

Each is read up to a limit, never whole: a path can name a device that never ends
(``/dev/zero``), or a file far larger than any of these can be (a database given by
mistake), and reading one whole would exhaust memory before any check could refuse it. A
named pipe is refused before any read: opening one blocks until a writer appears, which may
be never. A path no file can have (a NUL, a lone surrogate) is an ``OSError`` like any other
unreadable path, so every caller's ``except OSError`` turns it into its own ``ConfigError``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "MAX_SECRET_FILE_BYTES",
    "FileTooLarge",
    "NotRegularFile",
    "UnusablePath",
    "display_path",
    "env_secret",
    "read_limited",
]

#: A PEM key or a secret is a few kilobytes at most.
MAX_SECRET_FILE_BYTES = 1024 * 1024

# Opening a FIFO for reading blocks until a writer opens it; O_NONBLOCK returns at once, so
# the fstat below can refuse it (0 where the platform has no such flag: no FIFOs to fear).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class FileTooLarge(OSError):
    """The file holds more than ``limit`` bytes (``strerror`` says so, for messages)."""

    def __init__(self, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes")
        self.limit = limit


class NotRegularFile(OSError):
    """The path names a pipe or a socket, which is refused rather than waited on."""

    def __init__(self, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file but {kind}")


class UnusablePath(OSError):
    """No file can have this path: it holds a NUL or cannot be encoded for the file system."""

    def __init__(self, why: str) -> None:
        super().__init__(errno.EINVAL, why)


def printable(text: str) -> str:
    """``text`` for a terminal: each character that is not printable (controls, C1, bidi
    overrides) escaped as Python writes it, the rest as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def display_path(path: str | Path) -> str:
    """``path`` as a message may show it: quoted and escaped when it holds a control
    character or a lone surrogate (a NUL on a terminal, or an unprintable line)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ascii(text)
    return text if text.isprintable() else ascii(text)


def _encoded(path: str | Path) -> bytes:
    # Checked here, not left to open(): it raises ValueError / UnicodeEncodeError, which no
    # caller's ``except OSError`` expects.
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        raise UnusablePath("the path cannot be encoded for the file system") from None
    if b"\0" in raw:
        raise UnusablePath("the path contains a NUL character")
    return raw


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path``; :class:`FileTooLarge` past ``limit`` (at most ``limit + 1`` are read).

    A pipe or socket is :class:`NotRegularFile` and an impossible path :class:`UnusablePath`;
    any other failure is the ``OSError`` that opening or reading raised. Devices are read
    (up to the limit, like any file).
    """
    raw = _encoded(path)
    fd = os.open(raw, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            raise NotRegularFile("a named pipe")
        if stat.S_ISSOCK(mode):
            raise NotRegularFile("a socket")
        if stat.S_ISDIR(mode):  # what open() would have raised for a directory
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a device (a terminal) is read as open() would read it
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data


def env_secret(env: Mapping[str, str], name: str, field: str) -> bytes:
    """The UTF-8 bytes of the environment variable ``name`` (a key, a secret); a
    :class:`~federation.errors.ConfigError` naming it, never its value, when it is unset,
    empty or not UTF-8 (such bytes arrive in ``os.environ`` as lone surrogates)."""
    try:
        value = env.get(name)
    except (UnicodeEncodeError, ValueError):  # os.environ cannot even look up such a name
        value = None
    if not value:
        raise ConfigError(f"{field}: the environment variable {name!r} is not set", field=field)
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise ConfigError(
            f"{field}: the environment variable {name!r} is not valid UTF-8", field=field
        ) from None
