"""The simulated IOC's records against the real ADSimDetector IOC's (issue 12).

Both IOCs start fresh; every record of the real one is compared by name, record
type, native type, count, enum strings, display metadata, fields and value
(:mod:`differential`).  Every difference must be listed, with its reason, in
``tests/data/differential_allowlist.toml``.
"""

from __future__ import annotations

import differential as d
import pytest

REAL_MISSING = d.real_ioc_available()


def test_the_comparison_finds_each_kind_of_difference():
    """The harness itself, on hand-made readings (no IOC)."""
    real_records = {"cam1:A": "bo", "cam1:B": "ao", "cam1:C": "waveform", "cam1:D": "ai"}
    base = {"type": "enum", "count": 1, "value": 0, "ctrl": {"enum_strs": ["Done", "Go"]}}
    real = {
        d.REAL_PREFIX + "cam1:A": dict(base, fields={"RTYP": "bo", "DESC": "x"}),
        d.REAL_PREFIX + "cam1:B": {"type": "double", "count": 1, "value": 1.5, "ctrl": {}},
        d.REAL_PREFIX + "cam1:C": {"type": "long", "count": 10, "value": [0] * 10, "ctrl": {}},
        d.REAL_PREFIX + "cam1:D": {"type": "double", "count": 1, "value": 0.0, "ctrl": {}},
    }
    ours = {
        d.OURS_PREFIX + "cam1:A": dict(
            base, ctrl={"enum_strs": ["Go", "Done"]}, fields={"RTYP": "bo"}
        ),
        d.OURS_PREFIX + "cam1:B": {"type": "double", "count": 1, "value": 2.5, "ctrl": {}},
        d.OURS_PREFIX + "cam1:C": {"type": "long", "count": 1, "value": 0, "ctrl": {}},
    }
    diffs = d.compare(real_records, ["cam1:A", "cam1:B", "cam1:C", "cam1:E"], real, ours)
    kinds = sorted((x.kind, x.record) for x in diffs)
    assert kinds == [
        ("count", "cam1:C"),
        ("enum", "cam1:A"),
        ("extra", "cam1:E"),
        ("field", "cam1:A"),
        ("missing", "cam1:D"),
        ("value", "cam1:B"),
    ]


def test_allowlist_entries_name_records_kinds_and_a_reason():
    entries = d.load_allowlist()
    assert entries
    for entry in entries:
        assert entry.reason.strip() and entry.records
        assert set(entry.kinds) <= set(d.KINDS) | {"*"}


@pytest.mark.ioc
@pytest.mark.slow
@pytest.mark.timeout(1500)  # two IOCs, ~7,600 records and ~35,000 field channels each
@pytest.mark.skipif(REAL_MISSING is not None, reason=str(REAL_MISSING))
def test_records_agree_with_the_real_ioc_outside_the_allowlist():
    report = d.run()
    assert report.real_records > 7000 and report.ours_records > 2800
    shown = "\n".join(str(x) for x in report.not_allowed[:60])
    assert not report.not_allowed, f"{len(report.not_allowed)} differences:\n{shown}"
