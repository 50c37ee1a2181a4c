"""``adtoolkit demo``, run as a user runs it: a subprocess.

The default mode starts its own simulated IOC; the external mode is checked
against the test session's IOC (``ioc`` fixture), exactly as a user would point
the demo at a running IOC with ``--prefix``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: the progress bar once at least one frame has been counted
COUNTING = re.compile(r"frames:.*\|\s*[1-9]\d*/100000")


def _env(**extra: str) -> dict[str, str]:
    """This environment with this checkout's adtoolkit, minus any IOC settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EPICS_CA_", "ADTOOLKIT_IOC_", "ADTOOLKIT_READ_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def _demo(*args: str, env: dict[str, str] | None = None, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "adtoolkit", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or _env(),
        stdin=subprocess.DEVNULL,
    )


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie still answers kill(0): look at its state
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _check_files(summary: dict, frames: int) -> tuple[int, ...]:
    """The HDF5 file(s) hold ``frames`` frames of the shape databroker reported."""
    assert summary["files"], summary
    total = 0
    for name in summary["files"]:
        path = Path(name)
        assert path.is_file()
        assert str(path).startswith(summary["read_root"])
        with h5py.File(path, "r") as f:
            data = f["/entry/data/data"]
            total += data.shape[0]
            frame_shape = data.shape[1:]
    assert total == frames
    (shape,) = [s for key, s in summary["shapes"].items() if key.endswith("image")]
    assert shape[0] == frames
    assert tuple(shape[-len(frame_shape) :]) == frame_shape
    return frame_shape


@pytest.mark.ioc
def test_demo_runs_its_own_ioc_and_summarises_in_json(tmp_path: Path):
    result = _demo("--frames", "3", "--json", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)  # stdout is only the JSON
    assert summary["ioc"] == "simulated"
    assert summary["frames"] == 3
    assert len(summary["uid"]) >= 32
    assert summary["output_dir"] == str(tmp_path / "out")
    _check_files(summary, frames=3)

    png = Path(summary["png"])
    assert png.parent == tmp_path / "out"
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (600, 500)
        # a colour image with content, not a blank canvas
        assert len(image.convert("RGB").getcolors(1_000_000) or []) > 50

    for step in ("catalog", "ioc_start", "connect", "count", "read_back", "png", "total"):
        assert summary["timings"][step] >= 0
    assert summary["timings"]["total"] >= summary["timings"]["count"]

    # the prose went to stderr: the tree of the file and where things are
    for name in summary["files"]:
        assert f"{Path(name).name} : " in result.stderr
        assert f"HDF5 file:          {name}" in result.stderr
    assert f"First frame as PNG: {png}" in result.stderr
    assert "/entry/" in result.stderr or "entry:NXentry" in result.stderr

    assert _pid_gone(summary["ioc_pid"]), "the demo left its IOC running"


@pytest.fixture
def own_ioc(request):
    """An IOC for this test alone: the external one in external-IOC mode, else a fresh
    simulated one, so a count here cannot disturb the tests sharing the session IOC."""
    if os.environ.get("ADTOOLKIT_IOC_PREFIX"):
        return request.getfixturevalue("ioc")
    return request.getfixturevalue("ioc_factory")(prefix="ext:")


@pytest.mark.ioc
def test_demo_against_an_external_ioc(own_ioc, tmp_path: Path):
    ioc = own_ioc
    env = _env(**_client_env(ioc))
    result = _demo(
        "--prefix",
        ioc.prefix,
        "--write-root",
        str(ioc.write_root),
        "--read-root",
        str(ioc.read_root),
        "--num",
        "2",
        "--json",
        "--output",
        str(tmp_path),
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary["ioc"] == "external"
    assert summary["ioc_pid"] is None
    assert summary["prefix"] == ioc.prefix
    _check_files(summary, frames=2)
    assert f"Using the IOC with prefix {ioc.prefix}" in result.stderr


def test_demo_with_an_embedded_tiled_server(own_ioc, tmp_path: Path):
    """``--catalog tiled``: the run goes to tiled and is read back through it."""
    pytest.importorskip(
        "tiled.server", reason="tiled not installed (pip install 'adtoolkit[tiled]')"
    )
    ioc = own_ioc
    result = _demo(
        *("--prefix", ioc.prefix, "--write-root", str(ioc.write_root)),
        *("--read-root", str(ioc.read_root), "--catalog", "tiled", "--num", "2"),
        *("--json", "--output", str(tmp_path)),
        env=_env(**_client_env(ioc)),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary["catalog"].startswith("tiled http://127.0.0.1:")
    assert "api_key" not in summary["catalog"]
    assert f"readable storage {ioc.read_root}" in result.stderr
    _check_files(summary, frames=2)  # the files tiled's data sources name, read by h5py
    (dtype,) = [d for key, d in summary["dtypes"].items() if key.endswith("image")]
    with h5py.File(summary["files"][0], "r") as f:
        assert dtype == str(f["/entry/data/data"].dtype)  # not tiled's <f8 fallback


def _client_env(ioc) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("EPICS_CA_")}
    env.setdefault("EPICS_CA_ADDR_LIST", f"127.0.0.1:{ioc.port}")
    env.setdefault("EPICS_CA_AUTO_ADDR_LIST", "NO")
    return env


@pytest.mark.ioc
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_the_ioc(signum, tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "adtoolkit", "demo", "--frames", "100000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # faulthandler: if the demo does not exit, SIGABRT below makes it print every
        # thread's stack, so the failure says where it was stuck
        env=_env(TMPDIR=str(tmp_path), PYTHONFAULTHANDLER="1"),
    )
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")), daemon=True
    )
    reader.start()
    try:
        # wait until frames are being counted (the progress bar has moved)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            text = b"".join(chunks).decode(errors="replace")
            if COUNTING.search(text):  # tqdm: "frames:   0%|   | 3/100000 [...]"
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"demo never started counting:\n{b''.join(chunks).decode()[-3000:]}")
        text = b"".join(chunks).decode(errors="replace")
        pid = int(text.split(" pid ")[1].split()[0])
        proc.send_signal(signum)
        try:
            returncode = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            reader.join(5)
            stderr = b"".join(chunks).decode(errors="replace")
            pytest.fail(f"the demo did not exit within 60 s of {signum!r}:\n{stderr[-8000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(5)
    stderr = b"".join(chunks).decode(errors="replace")
    assert returncode == 130, stderr[-3000:]
    assert "interrupted; IOC stopped" in stderr
    assert _pid_gone(pid), "the IOC outlived the interrupted demo"


def test_external_prefix_needs_a_write_root():
    result = _demo("--prefix", "nowhere:", timeout=60)
    assert result.returncode == 1
    assert "--prefix nowhere: names an external IOC" in result.stderr
    assert "ADTOOLKIT_IOC_WRITE_ROOT" in result.stderr


def test_bad_frame_count_is_refused():
    result = _demo("--frames", "0", timeout=60)
    assert result.returncode == 2
    assert "--frames must be at least 1, not 0" in result.stderr


def test_unknown_catalog_is_refused_before_starting_an_ioc():
    result = _demo("--catalog", "no_such_catalog_here", timeout=120)
    assert result.returncode == 1
    assert "adtoolkit demo: no databroker catalog named 'no_such_catalog_here'" in result.stderr
    assert "Starting" not in result.stdout + result.stderr
