"""``path("auth/", include("federation.django.urls"))``: the sign-in views under one prefix."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "federation"

urlpatterns = [
    path("login/<str:issuer>", views.login, name="login"),
    path("callback/<str:issuer>", views.callback, name="callback"),
    path("sso", views.sso, name="sso"),
    path("logout", views.logout, name="logout"),
    path("backchannel-logout", views.backchannel_logout, name="backchannel_logout"),
]
