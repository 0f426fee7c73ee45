"""System checks for the common mistakes of a Django project using federation."""

from __future__ import annotations
