"""The django extra stays optional: the engine and the web layer never import Django or DRF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_imports_django_unless_used() -> None:
    code = (
        "import sys, federation, federation.web, federation.django, federation.storage\n"
        "from federation import Bridge\n"
        "Bridge.from_dict({'issuers': [{'provider': 'oidc', 'issuer': 'https://idp.test',"
        " 'audiences': ['a'], 'jwks_uri': 'https://idp.test/jwks'}]})\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_django_extra_names_what_federation_django_imports() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {req.split(">")[0].split("[")[0] for req in extras["django"]}
    assert names == {"django", "djangorestframework", "authlib"}
    assert set(extras["django"]) <= set(extras["test"])
