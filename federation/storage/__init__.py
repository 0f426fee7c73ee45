"""User storage: the protocol provisioning writes through, and the shipped stores.

::

    from federation.storage import SQLStore, MemoryStore

    store = SQLStore("sqlite:///federation.db")                       # embedded, the default
    store = SQLStore("postgresql+psycopg://app@db.internal/app")      # the same code, on PostgreSQL

A store is a transaction with eight methods (:class:`StoreTransaction`):
``find_identity``, ``get_user``, ``find_users_by_email``, ``identities_of``,
``insert_user``, ``update_user``, ``insert_identity``, ``delete_user``.
Implement it over your own user table (``docs/storage.md``) and check it with
``federation.testing.storage_conformance``. Each method is also a typed
operation (:class:`FindIdentity`, :class:`GetUser`, ...): a sans-I/O plan
yields them and :func:`drive` / :func:`adrive` run it on a transaction.

Must not: hold provisioning rules (``federation.provisioning`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DuplicateIdentity, StorageConflict, StorageError
from ._audit import (
    ACCOUNT_LOCKED,
    AUDIT_EVENTS,
    IDENTITY_LINKED,
    LOGIN_FAILED,
    LOGIN_SUCCEEDED,
    PASSWORD_LOGIN_FAILED,
    REFRESH_REUSED,
    ROLE_GRANTED,
    ROLE_REVOKED,
    SESSION_AUDIT_EVENTS,
    SESSION_ISSUED,
    SESSION_REFRESHED,
    SESSION_REVOKED,
    USER_CREATED,
    USER_DELETED,
    USER_DISABLED,
    USER_SESSIONS_REVOKED,
    USER_UPDATED,
    AuditSink,
    audit_fields,
    audit_value,
    deliver,
    fan_out,
    log_audit,
)
from ._memory import MemoryStore
from ._memory_sessions import MemorySessionStore
from ._ops import (
    DeleteUser,
    FindIdentity,
    FindUsersByEmail,
    GetUser,
    IdentitiesOf,
    InsertIdentity,
    InsertUser,
    Plan,
    StoreOp,
    UpdateUser,
    adrive,
    call,
    drive,
    run_to_the_end,
)
from ._protocol import (
    AsyncLoginReads,
    AsyncStore,
    AsyncStoreTransaction,
    LoginReads,
    Store,
    StoreTransaction,
    is_async_store,
)
from ._records import (
    ACTIVE,
    DISABLED,
    USER_COLUMNS,
    USER_FIELDS,
    AuditEvent,
    NewUser,
    User,
    UserIdentity,
    UserStatus,
    email_key,
)
from ._session_protocol import (
    MAX_LOCKOUT_DOUBLINGS,
    AttemptState,
    CredentialStore,
    LocalCredential,
    NewRefreshToken,
    RefreshOutcome,
    RefreshUse,
    SessionRecord,
    SessionStore,
    UserSessionState,
    after_failure,
    purge_instant,
    refresh_outcome,
)

if TYPE_CHECKING:
    from ._redis_sessions import AsyncRedisSessionStore, RedisSessionStore
    from ._sql import MAX_ROWS, SCHEMA_VERSION, SUPPORTED_BACKENDS, SQLStore, check_storage_url, resolve_url
    from ._sql_async import AsyncSQLStore
    from ._sql_sessions import SQLSessionStore

__all__ = [
    "ACCOUNT_LOCKED",
    "ACTIVE",
    "AUDIT_EVENTS",
    "DISABLED",
    "IDENTITY_LINKED",
    "LOGIN_FAILED",
    "LOGIN_SUCCEEDED",
    "MAX_LOCKOUT_DOUBLINGS",
    "MAX_ROWS",
    "PASSWORD_LOGIN_FAILED",
    "REFRESH_REUSED",
    "ROLE_GRANTED",
    "ROLE_REVOKED",
    "SCHEMA_VERSION",
    "SESSION_AUDIT_EVENTS",
    "SESSION_ISSUED",
    "SESSION_REFRESHED",
    "SESSION_REVOKED",
    "SUPPORTED_BACKENDS",
    "USER_COLUMNS",
    "USER_CREATED",
    "USER_DELETED",
    "USER_DISABLED",
    "USER_FIELDS",
    "USER_SESSIONS_REVOKED",
    "USER_UPDATED",
    "AsyncLoginReads",
    "AsyncRedisSessionStore",
    "AsyncSQLStore",
    "AsyncStore",
    "AsyncStoreTransaction",
    "AttemptState",
    "AuditEvent",
    "AuditSink",
    "CredentialStore",
    "DeleteUser",
    "DuplicateIdentity",
    "FindIdentity",
    "FindUsersByEmail",
    "GetUser",
    "IdentitiesOf",
    "InsertIdentity",
    "InsertUser",
    "LocalCredential",
    "LoginReads",
    "MemorySessionStore",
    "MemoryStore",
    "NewRefreshToken",
    "NewUser",
    "Plan",
    "RedisSessionStore",
    "RefreshOutcome",
    "RefreshUse",
    "SQLSessionStore",
    "SQLStore",
    "SessionRecord",
    "SessionStore",
    "StorageConflict",
    "StorageError",
    "Store",
    "StoreOp",
    "StoreTransaction",
    "UpdateUser",
    "User",
    "UserIdentity",
    "UserSessionState",
    "UserStatus",
    "adrive",
    "after_failure",
    "audit_fields",
    "audit_value",
    "call",
    "check_storage_url",
    "deliver",
    "drive",
    "email_key",
    "fan_out",
    "is_async_store",
    "log_audit",
    "purge_instant",
    "refresh_outcome",
    "resolve_url",
    "run_to_the_end",
]


_SQL_NAMES = frozenset(
    {"SQLStore", "SCHEMA_VERSION", "MAX_ROWS", "SUPPORTED_BACKENDS", "check_storage_url", "resolve_url"}
)


def __getattr__(name: str) -> Any:
    # SQLAlchemy is imported on first use of the SQL store, not by `import federation`.
    if name in _SQL_NAMES:
        from . import _sql

        return getattr(_sql, name)
    if name in ("RedisSessionStore", "AsyncRedisSessionStore"):  # redis-py on first use too
        from . import _redis_sessions

        return getattr(_redis_sessions, name)
    if name == "AsyncSQLStore":
        try:
            from ._sql_async import AsyncSQLStore
        except ImportError as exc:  # greenlet or aiosqlite missing
            missing = f" ({exc.name} is missing)" if exc.name else ""  # None: not a missing module
            raise ImportError(
                f"AsyncSQLStore needs the async extra: pip install 'federation-bridge[async]'{missing}"
            ) from exc
        return AsyncSQLStore
    if name == "SQLSessionStore":
        from ._sql_sessions import SQLSessionStore

        return SQLSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
