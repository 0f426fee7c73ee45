"""The coverage table in docs/security.md stays complete and true.

Every catalogue row id (145) has a line; every test it names exists; every row in scope
today names at least one test whose name carries the row id.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_DIR = Path(__file__).resolve().parent
PREFIXES = ("ENC", "JSON", "ALG", "HDR", "JWE", "KEY", "FETCH", "CLM", "OIDC", "MAP", "DOS")
COUNTS = {"ENC": 15, "JSON": 12, "ALG": 16, "HDR": 16, "JWE": 4, "KEY": 18, "FETCH": 11, "CLM": 20,
          "OIDC": 13, "MAP": 13, "DOS": 7}  # fmt: skip


_ROW = re.compile(r"^\| ((?:" + "|".join(PREFIXES) + r")-\d+) \|")


def _table() -> dict[str, str]:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = text.split("## Coverage of the attack catalogue", 1)[1]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} listed twice"
            rows[match.group(1)] = line
    return rows


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in SECURITY_DIR.glob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M):
            names.add(f"{path.name}::{name}")
    return names


def test_every_catalogue_row_is_listed_once() -> None:
    rows = _table()
    expected = {f"{p}-{n:02d}" for p, count in COUNTS.items() for n in range(1, count + 1)}
    assert set(rows) == expected
    assert len(rows) == 145
    # The table is the catalogue's definition (it is not shipped elsewhere): every id has its threat.
    assert all(line.split("|")[2].strip() for line in rows.values())


def _external_test_exists(reference: str) -> bool:
    path, name = reference.split("::")
    source = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).is_file() else ""
    return re.search(rf"^(?:async )?def {name}\(", source, re.M) is not None


def test_listed_tests_exist_and_carry_the_row_id() -> None:
    defined = _defined_tests()
    for row_id, line in _table().items():
        cell = line.split("|")[3]
        named = re.findall(r"`(test_sec_\w+\.py::test_\w+)`", cell)
        # Rows covered by the key-cache and provider suites name those tests by path.
        elsewhere = re.findall(r"`(tests/[\w/]+\.py::test_\w+)`", cell)
        if "pending" in line or "not applicable" in cell:
            assert not named and not elsewhere, row_id
            continue
        assert named or elsewhere, f"{row_id} has no test"
        for test in named:
            assert test in defined, f"{row_id}: {test} does not exist"
        for reference in elsewhere:
            assert _external_test_exists(reference), f"{row_id}: {reference} does not exist"
        if named:
            slug = row_id.lower().replace("-", "_")
            assert any(slug in t for t in named), f"{row_id}: no test name carries {slug}"


def test_pending_rows_are_exactly_the_unbuilt_features() -> None:
    pending = {r for r, line in _table().items() if "pending" in line}
    unbuilt: set[str] = set()  # every row's feature is built
    assert pending == unbuilt
