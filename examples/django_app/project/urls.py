"""The example's URLs: the admin, the sign-in views, a page and a small DRF API."""

from django.contrib import admin
from django.urls import include, path
from notes import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "auth/", include("federation.django.urls")
    ),  # federation: /auth/login/<issuer>, /callback, /sso, /logout
    path("whoami", views.whoami),
    path("api/me", views.Me.as_view()),
    path("api/reports", views.Reports.as_view()),
    path("api/notes", views.Notes.as_view()),
]
