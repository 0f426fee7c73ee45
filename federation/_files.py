"""Reading the files a deployment's configuration names: the config and mapping files, key
and secret files, a key set file and the CLI's claims file.

Each is read up to a limit, never whole: a path can name a device that never ends
(``/dev/zero``), a pipe, or a file far larger than any of these can be (a database given by
mistake), and reading one whole would exhaust memory before any check could refuse it.
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["MAX_SECRET_FILE_BYTES", "FileTooLarge", "read_limited"]

#: A PEM key or a secret is a few kilobytes at most.
MAX_SECRET_FILE_BYTES = 1024 * 1024


class FileTooLarge(OSError):
    """The file holds more than ``limit`` bytes (``strerror`` says so, for messages)."""

    def __init__(self, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes")
        self.limit = limit


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path``; :class:`FileTooLarge` past ``limit`` (at most ``limit + 1`` are read).

    Any other failure is the ``OSError`` that opening or reading raised.
    """
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data
