"""The example's views: a page for signed-in browsers and an API for bearer tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from federation.django.drf import HasRoles


def _describe(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


@login_required
def whoami(request: HttpRequest) -> JsonResponse:
    """The signed-in user: a Django session after /auth/login, or a bearer token."""
    return JsonResponse(
        {**_describe(request.user), "via": "token" if hasattr(request, "federation") else "session"}
    )


class Me(APIView):
    """GET /api/me: who the token (or session) is."""

    def get(self, request: Request) -> Response:
        return Response(_describe(request.user))


class Reports(APIView):
    """GET /api/reports: only for the role ``auditor``."""

    permission_classes = [HasRoles.of("auditor")]

    def get(self, request: Request) -> Response:
        return Response({"reports": [], "for": request.user.get_username()})


class Notes(APIView):
    """POST /api/notes: an unsafe method, authenticated by a bearer token without any CSRF token."""

    def post(self, request: Request) -> Response:
        return Response({"saved": request.data.get("text", ""), "by": request.user.pk}, status=201)
