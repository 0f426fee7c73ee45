"""The external-vector summary: counts per source, asserted to add up, printed in the CI log.

Buckets (see security_vectors.py): verified, rejected, overridden (upstream
mislabels), refused by policy (with the catalogue row), not applicable
(JWE strings; primitive groups matching no JOSE algorithm), failed (the
library disagreed with the expectation; the per-case tests fail as well).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import security_vectors as sv

BUCKETS = ("verified", "rejected", "overridden", "refused by policy", "not applicable", "failed")
_SHORT = {"refused by policy": "policy", "not applicable": "n/a"}


def _lines(counts: dict[str, Counter[str]]) -> list[str]:
    width = max(len(k) for k in counts)
    lines = [
        f"{'source':<{width}}  " + "  ".join(f"{_SHORT.get(b, b):>10}" for b in BUCKETS) + "       total"
    ]
    totals: Counter[str] = Counter()
    for source, counter in counts.items():
        if source.startswith("refused by policy"):
            continue
        totals.update(counter)
        cells = "  ".join(f"{counter.get(b, 0):>10}" for b in BUCKETS)
        lines.append(f"{source:<{width}}  {cells}  {sum(counter.values()):>10}")
    cells = "  ".join(f"{totals.get(b, 0):>10}" for b in BUCKETS)
    lines.append(f"{'TOTAL':<{width}}  {cells}  {sum(totals.values()):>10}")
    reasons = counts.get("refused by policy: reasons", Counter())
    lines.append(
        "policy = refused by documented policy (never counted as verified); by catalogue row: "
        + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    )
    return lines


def test_vector_counts_add_up(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = sv.all_counts()
    # every case of every file is in exactly one bucket
    for name in (*sv.JWS_FILES, *sv.JWE_FILES, *sv.PRIMITIVE_FILES):
        declared = json.loads((sv.WYCHEPROOF / name).read_text())["numberOfTests"]
        assert sum(counts[name].values()) == declared, name
        assert set(counts[name]) <= set(BUCKETS)
    cookbook = counts["jose-cookbook (RFC 7520)"]
    assert cookbook["verified"] == len(sv.COOKBOOK_POSITIVE)
    assert sum(cookbook.values()) == len(sv.COOKBOOK_POSITIVE) + len(sv.cookbook_negatives())
    # the tables are fully used: each mislabel is counted once as overridden
    assert counts["json_web_signature_test.json"]["overridden"] == len(sv.MISLABELS)
    reasons = counts["refused by policy: reasons"]
    assert sum(reasons.values()) == sum(c.get("refused by policy", 0) for c in counts.values())
    lines = _lines(counts)
    sv.VECTOR_SUMMARY["lines"] = lines
    with capsys.disabled():
        print("\n" + "\n".join(lines))
