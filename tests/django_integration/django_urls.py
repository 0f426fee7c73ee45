"""The in-process Django tests' URLconf: each test module adds its own patterns here."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
