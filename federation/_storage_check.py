"""What a store that cannot be reached told us, said for the command line.

Owns: :func:`describe_storage_failure` (a :class:`~federation.errors.StorageError`
with the database it concerns and the driver's own first line) and
:func:`display_url`. Used by ``federation check-config``/``users``/``audit``/``db``;
the URL itself is checked by :func:`federation.storage.check_storage_url`.

Must not: connect to a database (``federation check-config --probe`` does that
through the store itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["describe_storage_failure", "display_url"]


def display_url(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def describe_storage_failure(exc: StorageError, url: URL | None) -> str:
    """``exc`` with the database it concerns and the driver's own words (its first line).

    A driver's connection error names the host, the database or the user, never
    a query parameter (the store hides those); it is cut to one short line.
    """
    message = str(exc)
    cause = exc.__cause__
    driver = getattr(cause, "orig", None) or cause
    said = ""
    if driver is not None:
        lines = [line.strip() for line in str(driver).splitlines() if line.strip()]
        said = lines[0][:300] if lines else type(driver).__name__
    if url is None or (url.database and url.database in message):
        return f"{message} ({said})" if said else message
    where = f"database {url.database!r}" if url.database else "the database"
    if url.get_backend_name() != "sqlite":
        where += f" at {display_url(url._replace(database=None))}"
    return f"{where}: {message}" + (f"; the driver said: {said}" if said else "")
