"""The README's two quickstart commands, run literally as a new user would.

A copy of this checkout (as ``git clone`` would give it: no virtual environment,
no build products) is made in a temporary directory and each command is given to
``bash -c`` exactly as written in README.md: it creates a fresh ``.venv`` (without
``--system-site-packages``: everything must come from the project's own
dependencies), installs the project and runs ``adtoolkit demo``, then the test
suite.  pip may use its normal cache, so this measures a new user's second install
rather than their network.

The test line is run literally too, but the nested pytest is narrowed with
``PYTEST_ADDOPTS`` to collecting every test (so every test module imports in the
fresh environment) plus running the IOC connection tests for real.  The whole
suite under that same command is what CI itself runs (`.ci/run`); running it a
second time here would double CI's time for no new information.  The nested run
sets ``ADTOOLKIT_QUICKSTART_NESTED`` so this test never starts itself again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_readme import quickstart_commands

ROOT = Path(__file__).resolve().parents[1]
NESTED = "ADTOOLKIT_QUICKSTART_NESTED"
#: the things a fresh clone does not have
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", "build", "dist"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),  # two installs and a nested test run
    pytest.mark.skipif(
        bool(os.environ.get(NESTED)), reason="already inside the quickstart's own test run"
    ),
]


def _fresh_user_env() -> dict[str, str]:
    """This environment without anything that points at the current Python install."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS")
        and not k.startswith(("EPICS_", "ADTOOLKIT_", "PYTEST_"))
    }
    venv_bin = str(Path(sys.prefix) / "bin")
    if sys.prefix != sys.base_prefix:  # drop our own venv from PATH, as a new shell would
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin
        )
    env["MPLBACKEND"] = "Agg"
    env[NESTED] = "1"
    return env


#: what the nested ``python3 -m pytest -q`` runs: every test collected, these run
NESTED_PYTEST = "tests/test_ioc_connect.py tests/test_tree.py"


def _run(
    command: str, cwd: Path, timeout: float, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={**_fresh_user_env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_readme_quickstart_commands_work_in_a_fresh_venv(tmp_path: Path):
    demo_command, test_command = quickstart_commands()
    clone = tmp_path / "adtoolkit"
    shutil.copytree(ROOT, clone, ignore=NOT_IN_A_CLONE, symlinks=True)
    assert not (clone / ".venv").exists()

    t0 = time.monotonic()
    demo = _run(demo_command, clone, timeout=1500)
    demo_seconds = time.monotonic() - t0
    print(f"\nquickstart demo line: {demo_seconds:.0f} s", flush=True)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    venv_python = clone / ".venv" / "bin" / "python3"
    # the venv is isolated: it does not see the system's site-packages
    cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    assert "First frame as PNG:" in demo.stdout
    png = Path(demo.stdout.split("First frame as PNG:")[1].split()[0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ": NeXus data file" in demo.stdout or ": HDF5 file" in demo.stdout

    t0 = time.monotonic()
    collect = _run(test_command, clone, timeout=1500, extra_env={"PYTEST_ADDOPTS": "--co"})
    assert collect.returncode == 0, collect.stdout[-5000:] + collect.stderr[-2000:]
    collected = collect.stdout.strip().splitlines()[-1]
    assert " collected" in collected and "error" not in collected, collected
    tests = _run(test_command, clone, timeout=1500, extra_env={"PYTEST_ADDOPTS": NESTED_PYTEST})
    test_seconds = time.monotonic() - t0
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    last = tests.stdout.strip().splitlines()[-1]
    assert " passed" in last and " failed" not in last, last
    # the tests ran in the fresh venv's Python, from the copy
    probe = subprocess.run(
        [str(venv_python), "-c", "import adtoolkit; print(adtoolkit.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip().startswith(str(clone / "src")), probe.stdout
    print(
        f"\nquickstart: demo line {demo_seconds:.0f} s, test line {test_seconds:.0f} s;"
        f" {collected}; {last}"
    )
