"""The web layer: framework integrations and the login service (docs/web.md).

The framework-neutral rules live here and import nothing beyond the standard
library and the bridge: where a credential comes from, which response an error
becomes, the cookies and their attributes, CSRF, forwarded headers and the
redirect guard. The integrations are their own modules, each importing its
framework only when imported itself:

* :mod:`federation.web.fastapi` (``FederationAuth``, a FastAPI ``Security`` scheme),
* :mod:`federation.web.starlette` (``FederationBackend`` for ``AuthenticationMiddleware``),
* :mod:`federation.web.flask` (``FederationAuth``, a Flask extension),
* :mod:`federation.django` (an app: backend, middleware, DRF classes, sign-in views),
* :func:`create_app`: the login service (Starlette), also ``federation serve``.

The browser sign-in's rules (:func:`sign_in_clients`, :func:`check_metadata`,
:func:`check_response_issuer`, :func:`check_id_token`, :func:`url_token_claim`,
:func:`token_endpoint_failure`, :func:`userinfo_endpoint`, :func:`read_userinfo`) are shared
by the login service and the Django views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core import (
    CSRF_COOKIE,
    REFRESH_COOKIE,
    RETRY_AFTER,
    SESSION_COOKIE,
    CookiePolicy,
    Credential,
    CSRFGuard,
    ErrorResponse,
    ForwardedPolicy,
    Guard,
    WebSettings,
    bearer_token,
    credential_from,
    error_response,
    require_roles,
)
from ._redirects import RedirectPolicy, origin_of
from ._signin import (
    MAX_OPEN_SIGN_INS,
    SIGN_IN_MAX_AGE,
    SignInClient,
    check_id_token,
    check_metadata,
    check_response_issuer,
    finish_sign_in,
    id_token_of,
    read_userinfo,
    sign_in_clients,
    spent_state_claim,
    start_sign_in,
    token_endpoint_failure,
    url_token_claim,
    userinfo_endpoint,
)

if TYPE_CHECKING:
    from ..bridge import Bridge

__all__ = [
    "CSRF_COOKIE",
    "MAX_OPEN_SIGN_INS",
    "REFRESH_COOKIE",
    "RETRY_AFTER",
    "SESSION_COOKIE",
    "SIGN_IN_MAX_AGE",
    "CSRFGuard",
    "CookiePolicy",
    "Credential",
    "ErrorResponse",
    "ForwardedPolicy",
    "Guard",
    "RedirectPolicy",
    "SignInClient",
    "WebSettings",
    "bearer_token",
    "check_id_token",
    "check_metadata",
    "check_response_issuer",
    "create_app",
    "credential_from",
    "error_response",
    "finish_sign_in",
    "id_token_of",
    "origin_of",
    "read_userinfo",
    "require_roles",
    "sign_in_clients",
    "spent_state_claim",
    "start_sign_in",
    "token_endpoint_failure",
    "url_token_claim",
    "userinfo_endpoint",
]


def create_app(bridge: Bridge, **options: Any) -> Any:
    """The login service as a Starlette app (needs the ``web`` extra); see :mod:`federation.web._service`."""
    from ._service import create_app as build

    return build(bridge, **options)
