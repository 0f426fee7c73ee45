"""The tables the bridge keeps beside Django's user model.

Owns: :class:`FederatedIdentity` (an issuer's identity key linked to a user
of ``AUTH_USER_MODEL``), :class:`FederatedProfile` (what the storage protocol
keeps about a user that the user model has no column for), and the session
tables of :class:`~federation.storage.SessionStore` (sessions, refresh
tokens, revoked tokens, generations, sign-in attempts) plus the audit trail.
Session rows carry the user id as a string and no foreign key: a user's
generation and revocations outlive the user row, so a deleted user's session
tokens stay refused (its identities go with it: a later sign-in is a new user's).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FederatedIdentity(models.Model):
    """One external identity (issuer, subject) signing in as a local user."""

    issuer = models.CharField(max_length=1024)
    subject = models.CharField(max_length=1024)
    provider = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="federated_identities"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "federated identity"
        verbose_name_plural = "federated identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="federation_identity_key")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class FederatedProfile(models.Model):
    """The storage protocol's fields that ``AUTH_USER_MODEL`` has no column for.

    ``username`` is the mapped username (Django's own username stays the
    unique one the store derived at creation); ``attributes`` every mapped
    attribute, also those copied to user columns (``user_fields``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="federation_profile",
    )
    username = models.CharField(max_length=255, null=True, blank=True)
    email_verified = models.BooleanField(default=False)
    #: The address ``email_verified`` was written for: the user model's email is Django's
    #: to edit (admin, forms), and an edited address is not verified.
    verified_email = models.TextField(null=True, blank=True)
    display_name = models.CharField(max_length=256, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "federated profile"

    def __str__(self) -> str:
        return f"profile of user {self.pk}"


class Session(models.Model):
    """One session of the app's own tokens (a refresh family)."""

    session_id = models.CharField(max_length=64, primary_key=True)
    user_id = models.CharField(max_length=64, db_index=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    refreshed_at = models.DateTimeField(null=True)
    revoked_at = models.DateTimeField(null=True)
    generation = models.IntegerField()

    class Meta:
        db_table = "federation_sessions"


class RefreshToken(models.Model):
    """A refresh token, as its SHA-256 (a copy of the table lets nobody refresh)."""

    token_hash = models.CharField(max_length=64, primary_key=True)
    session_id = models.CharField(max_length=64, db_index=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "federation_refresh_tokens"


class RevokedToken(models.Model):
    """An access token refused until it expires (also the single-use URL tokens' claims)."""

    jti = models.CharField(max_length=128, primary_key=True)
    user_id = models.CharField(max_length=64, db_index=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "federation_revoked_tokens"


class Generation(models.Model):
    """A user's token generation: tokens minted under an earlier one are refused."""

    user_id = models.CharField(max_length=64, primary_key=True)
    generation = models.IntegerField()

    class Meta:
        db_table = "federation_generations"


class Attempts(models.Model):
    """Failed sign-in attempts under one key."""

    key = models.CharField(max_length=512, primary_key=True)
    failures = models.IntegerField()
    locked_until = models.DateTimeField(null=True)
    lockouts = models.IntegerField()

    class Meta:
        db_table = "federation_attempts"
        verbose_name_plural = "attempts"


class AuditRecord(models.Model):
    """One audit event (``audit: store``): what happened to whom, never a token."""

    at = models.DateTimeField(db_index=True)
    name = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64, null=True, db_index=True)
    issuer = models.CharField(max_length=1024, null=True)
    subject = models.CharField(max_length=1024, null=True)
    detail = models.JSONField(default=dict)

    class Meta:
        db_table = "federation_audit"

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
