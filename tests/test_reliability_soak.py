"""The short soak (benchmarks/soak.py --short) in CI: nothing grows past its bound.

The full soak (10,000 frames streamed into one file, then 500 one-frame counts) is the
benchmark itself; this runs the same code with 600 frames and 30 counts in a fresh
process (its own IOC, its own CA context) and checks its verdict and its figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ioc, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def test_short_soak_stays_within_bounds(tmp_path):
    out = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--short", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(res.stdout[-4000:])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["frames"] == 600 and report["counts"] == 30
    assert report["broken"] == {}
    labels = [s["label"] for s in report["samples"]]
    assert "after stream" in labels and "end" in labels and "count 30" in labels
    assert set(report["growth"]) == set(report["bounds"])
    # the figures are real measurements, not defaults
    first = report["samples"][0]
    assert first["ioc_rss_mib"] > 10 and first["client_rss_mib"] > 10
    assert first["ioc_threads"] >= 1 and first["client_ca_channels"] >= 0
