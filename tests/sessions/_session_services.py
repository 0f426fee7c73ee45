"""Where the session tests find their services (imported by name: conftest modules collide)."""

from __future__ import annotations

import os

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("FEDERATION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
