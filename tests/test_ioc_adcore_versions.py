"""The record surface follows the ADCore release asked for: R3-14's by default
(as the real IOC in ../shared serves it), plus the records of older releases
that ophyd's and apstools' classes name when ``--adcore`` is older."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: records R3-14 no longer has, named by older ophyd/apstools plugin classes
LEGACY = (
    "cam1:PoolMaxBuffers",
    "HDF1:FileNumber_Sync",
    "HDF1:FileNumber_write",
    "Trans1:Type1",
    "Trans1:T4MaxSize2",
    "Stats1:TSControl",
    "Proc1:LowClip",
)
#: their R3-14 successors and records new in R3-14
CURRENT = ("Proc1:LowClipThresh", "Proc1:HighClipValue", "Over1:1:CenterX", "Stats1:CursorVal")


def list_pvs(*args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", "--prefix", "v:", "--list-pvs", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return {line[2:] for line in out.stdout.split()}


def test_default_is_the_r3_14_record_surface():
    pvs = list_pvs()
    assert not set(LEGACY) & pvs
    assert set(CURRENT) <= pvs


@pytest.mark.parametrize("version", ["3.4", "R3-12-1"])
def test_an_older_adcore_adds_the_legacy_records(version):
    default, older = list_pvs(), list_pvs("--adcore", version)
    assert set(LEGACY) <= older
    assert default <= older


def test_a_bad_version_is_a_clear_error():
    out = subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", "--list-pvs", "--adcore", "new"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "ADCore version 'new'" in out.stderr
