"""What is wrong with a ``storage:`` URL, said before a store is built, and what a
store that cannot be reached told us.

Owns: :func:`check_storage_url` (the URL parses, SQLAlchemy knows its dialect,
its driver module imports; else a :class:`~federation.errors.ConfigError`
naming the missing module and the ``pip install`` that brings it) and
:func:`describe_storage_failure` (a :class:`~federation.errors.StorageError`
with the database it concerns and the driver's own first line, for the
command line). Used by :class:`~federation.Bridge` when it builds its store
from ``storage:`` and by ``federation check-config``/``users``/``audit``/``db``.

Must not: connect to a database (``federation check-config --probe`` does that
through the store itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["SUPPORTED_BACKENDS", "check_storage_url", "describe_storage_failure", "display_url"]

#: The databases the SQL store's transaction discipline is written and tested for.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

# How to install each driver SQLAlchemy can name; the default psycopg 3 comes with our extra.
_INSTALL = {
    "postgresql+psycopg": "pip install 'federation-bridge[postgres]'",
    "postgresql+psycopg2": "pip install psycopg2-binary",
    "postgresql+pg8000": "pip install pg8000",
    "postgresql+asyncpg": "pip install asyncpg",
    "mysql+mysqldb": "pip install mysqlclient",
    "mysql+pymysql": "pip install pymysql",
    "mysql+mysqlconnector": "pip install mysql-connector-python",
    "mssql+pyodbc": "pip install pyodbc",
    "oracle+oracledb": "pip install oracledb",
}


def display_url(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def check_storage_url(url: str, base_dir: str | Path | None = None) -> URL:
    """The resolved URL, once its dialect is known and its driver importable.

    Raises :class:`ConfigError` (``field="storage"``) for a string that is not
    a database URL, a dialect SQLAlchemy does not know, or a driver module that
    is not installed (the message names the module and how to install it).
    """
    from sqlalchemy.exc import NoSuchModuleError

    from .storage import resolve_url

    parsed = resolve_url(url, base_dir)  # ConfigError for a string that is not a URL
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"storage: unknown database {parsed.drivername!r} (SQLAlchemy has no such dialect); "
            f"the SQL store supports {' and '.join(SUPPORTED_BACKENDS)}, "
            "e.g. sqlite:///federation.db or postgresql+psycopg://user@host/db",
            field="storage",
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = exc.name or str(exc)
        name = f"{parsed.get_backend_name()}+{parsed.get_driver_name()}"
        install = _INSTALL.get(name, f"pip install {module}")
        raise ConfigError(
            f"storage: the {name} driver needs the Python module {module!r}, which is not "
            f"installed: {install}",
            field="storage",
        ) from None
    return parsed


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
    hint = ""
    if type(driver).__name__ == "InvalidSchemaName":  # PostgreSQL: search_path names no schema that exists
        hint = " (the schema the search_path names does not exist: create it first, CREATE SCHEMA <name>)"
    return f"{where}: {message}" + (f"; the driver said: {said}" if said else "") + hint
