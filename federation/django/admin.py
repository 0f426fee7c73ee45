"""The admin: federated identities (which issuer's subject signs in as whom) and the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditRecord, FederatedIdentity, FederatedProfile


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(admin.ModelAdmin):
    """Identities are written by sign-ins; the admin shows and deletes them (an unlink)."""

    list_display = ("user", "issuer", "subject", "provider", "created_at")
    list_filter = ("provider", "issuer")
    search_fields = ("subject", "issuer", "user__username", "user__email")
    readonly_fields = ("user", "issuer", "subject", "provider", "created_at")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FederatedProfile)
class FederatedProfileAdmin(admin.ModelAdmin):
    """What the mapping wrote about each user (read-only: the next sign-in writes it again)."""

    list_display = ("user", "username", "display_name", "email_verified", "updated_at")
    search_fields = ("username", "display_name", "user__username", "user__email")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Every field, those added later too: verified_email edited here would make any
        # address read as verified, the key a link by email trusts.
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    """The audit trail (``audit: store``), read-only."""

    list_display = ("at", "name", "user_id", "issuer", "subject")
    list_filter = ("name",)
    search_fields = ("user_id", "subject")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a trail that its readers can shorten is no trail
