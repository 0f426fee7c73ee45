"""``manage.py federation_check``: what ``federation check-config --probe`` says, for the Django setup.

Loads ``settings.FEDERATION`` and its config (the mapping included), then
probes: every issuer's keys fetched, the federation tables present in the
database. Exit status 0 when all is well; 1 (a ``CommandError`` naming what
failed) otherwise, never a traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ....errors import FederationError


class Command(BaseCommand):
    """Check the federation configuration and probe what it depends on."""

    help = "Check settings.FEDERATION and its config; probe the issuers' keys and the database."
    # The system checks' federation.E001 points here for the details: running them first
    # would abort with that very error before this command could say what it is.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-probe", action="store_true", help="only load the configuration")

    def handle(self, *args: Any, **options: Any) -> None:
        from ...conf import build_bridge, federation_settings

        try:
            settings = federation_settings()
            bridge = build_bridge(settings)
        except FederationError as exc:
            raise CommandError(f"configuration: {exc}") from None
        with bridge:
            source = settings.config if not isinstance(settings.config, dict) else "inline"
            self.stdout.write(
                f"{source}: ok ({len(bridge.issuers)} issuer{'s' if len(bridge.issuers) != 1 else ''})"
            )
            for iss in bridge.issuers:
                self.stdout.write(f"  {iss}")
            self.stdout.write(f"storage  Django database {settings.database!r}")
            if options["no_probe"]:
                return
            unavailable: list[str] = []
            report = bridge.warm_up()
            for iss in bridge.issuers:
                if iss in report.failed:
                    self.stdout.write(f"probe    keys of {iss}: unavailable ({report.failed[iss]})")
                    unavailable.append(f"keys of {iss}")
                else:
                    self.stdout.write(f"probe    keys of {iss}: fetched")
            try:
                from ...models import FederatedIdentity, Session

                FederatedIdentity.objects.using(settings.database).exists()
                Session.objects.using(settings.database).exists()
            except DatabaseError as exc:
                self.stdout.write(
                    f"probe    storage: unavailable ({type(exc).__name__}; run manage.py migrate?)"
                )
                unavailable.append("storage")
            else:
                self.stdout.write("probe    storage: ok")
            if unavailable:
                raise CommandError("unavailable: " + ", ".join(unavailable))
