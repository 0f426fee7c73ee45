"""Django REST framework: token authentication and role permissions.

Owns: :class:`FederationAuthentication` (``DEFAULT_AUTHENTICATION_CLASSES``)
and :class:`HasRoles` (``permission_classes = [HasRoles.of("admin")]``).

A refused token answers 401 with ``WWW-Authenticate: Bearer ...`` carrying
the RFC 6750 error (``invalid_token``; ``invalid_request`` for a malformed
header), 403 for a disabled user, 503 with ``Retry-After`` when keys or
storage are down; a request without a token is left to the next
authentication class (DRF answers 401 with the Bearer challenge when the view
needs a user).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..errors import FederationError
from ..web import RETRY_AFTER, error_response
from .backends import federated_user
from .conf import get_guard

__all__ = ["FederationAuthentication", "HasRoles"]

_CHALLENGE = "_federation_challenge"
_PLAIN_CHALLENGE = 'Bearer realm="federation"'


class ServiceUnavailable(exceptions.APIException):
    """503: the identity provider's keys or the store cannot be reached; retry later."""

    status_code = 503
    default_detail = "authentication is unavailable; retry later"
    default_code = "unavailable"


def _refusal(request: Request, exc: FederationError) -> exceptions.APIException:
    answer = error_response(exc)
    challenge = answer.headers.get("WWW-Authenticate")
    if challenge:
        setattr(request._request, _CHALLENGE, challenge)
    if answer.status == 401:
        return exceptions.AuthenticationFailed(answer.detail, code=answer.code)
    if answer.status == 503:
        refused = ServiceUnavailable(answer.detail, code=answer.code)
        refused.wait = RETRY_AFTER  # DRF turns it into Retry-After
        return refused
    if answer.status == 400:
        malformed = exceptions.ParseError(answer.detail, code=answer.code)
        # DRF adds the challenge to a 401 only; RFC 6750 §3.1 gives invalid_request one too.
        malformed.auth_header = challenge
        return malformed
    return exceptions.PermissionDenied(answer.detail, code=answer.code)


class FederationAuthentication(BaseAuthentication):
    """Bearer tokens (an issuer's or the app's own) through the bridge; ``request.auth`` is the Principal."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        """The (user, principal) of the request's token; None when it carries none."""
        django_request = request._request
        principal = getattr(django_request, "federation", None)  # the middleware's work, if it ran
        if principal is None:
            try:
                principal = get_guard().authenticate(
                    method=request.method or "GET",
                    headers=django_request.headers,
                    cookies=django_request.COOKIES,
                    optional=True,
                )
            except FederationError as exc:
                raise _refusal(request, exc) from None
            if principal is None:
                return None
        user = federated_user(principal.user.id)
        if user is None:
            from ..errors import AccountDisabled

            raise _refusal(request, AccountDisabled("this account is disabled", user_id=principal.user.id))
        return user, principal

    def authenticate_header(self, request: Request) -> str:
        """The challenge of a 401: the refusal's own (RFC 6750 §3), else the plain Bearer one."""
        return str(getattr(request._request, _CHALLENGE, _PLAIN_CHALLENGE))


def _roles_of(request: Request) -> frozenset[str]:
    principal = (
        request.auth if hasattr(request.auth, "roles") else getattr(request._request, "federation", None)
    )
    if principal is not None:
        return frozenset(principal.roles)
    user = request.user
    if user is None or not user.is_authenticated:
        return frozenset()
    return frozenset(user.groups.values_list("name", flat=True))  # a Django session: its groups


class HasRoles(BasePermission):
    """Allows a request whose user holds every role of :attr:`roles` (token roles, else groups)."""

    roles: frozenset[str] = frozenset()
    message = "the user lacks a role this endpoint requires"
    code = "insufficient_role"

    @classmethod
    def of(cls, *roles: str) -> type[HasRoles]:
        """A permission class requiring ``roles``: ``permission_classes = [HasRoles.of("admin")]``."""
        return type(f"HasRoles_{'_'.join(roles)}", (cls,), {"roles": frozenset(roles)})

    def required(self, view: Any) -> Iterable[str]:
        """The roles asked for: the class's, else the view's ``required_roles``."""
        return self.roles or frozenset(getattr(view, "required_roles", ()))

    def has_permission(self, request: Request, view: Any) -> bool:
        """True when the request's user holds every required role (and is authenticated)."""
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return set(self.required(view)) <= _roles_of(request)
