"""The ``adtoolkit ioc`` command: --list-pvs, instance definitions, clean stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adtoolkit.ioc.launcher import SimulatedIOC

ROOT = Path(__file__).resolve().parents[1]


def run_ioc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_list_pvs_default_prefix():
    result = run_ioc("--list-pvs")
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert "ad:cam1:Acquire" in names and "ad:HDF1:XMLFileName_RBV" in names
    assert "ad:Over1:8:Name" in names
    assert len(names) == len(set(names)) > 2500


def test_instance_definition_adds_chained_plugin():
    result = run_ioc(
        "--instance", str(ROOT / "iocs" / "adsim"), "--prefix", "13SIM1:", "--list-pvs"
    )
    assert result.returncode == 0, result.stderr
    names = set(result.stdout.split())
    assert "13SIM1:Stats2:NDArrayPort_RBV" in names
    assert "13SIM1:cam1:Model_RBV" in names


def test_bad_instance_definition_is_reported(tmp_path):
    bad = tmp_path / "instance.toml"
    bad.write_text(
        'prefix = "x:"\n[[plugins]]\ntype = "NDNoSuchPlugin"\nsuffix = "A:"\nport = "A"\n'
    )
    result = run_ioc("--instance", str(bad), "--list-pvs")
    assert result.returncode == 2
    assert str(bad) in result.stderr and "NDNoSuchPlugin" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("prefix = \n")
    result = run_ioc("--instance", str(broken), "--list-pvs")
    assert result.returncode == 2 and str(broken) in result.stderr


@pytest.mark.ioc
def test_sigterm_stops_cleanly_and_instance_wiring(ioc_factory):
    handle = ioc_factory(prefix="adtc:", extra_args=("--instance", str(ROOT / "iocs" / "adsim")))
    proc: SimulatedIOC = handle.process
    assert proc.ready_line.startswith(f"adtoolkit-ioc ready prefix=adtc: port={handle.port}")
    from ioc_helpers import CA

    ca = CA("adtc:")
    try:
        assert ca.get("Stats2:NDArrayPort_RBV") == "ROI1"
        assert ca.get("ROI1:PortName_RBV") == "ROI1"
        # boot-time records of the instance (dbpf-style), relative files resolved
        adsim = ROOT / "iocs" / "adsim"
        assert ca.get("cam1:NDAttributesFile") == str(adsim / "attributes.xml")
        assert ca.get("cam1:NDAttributesMacros") == "CAMERA=adtc:cam1:"
        assert ca.get("HDF1:XMLFileName_RBV") == str(adsim / "hdf5_layout_nexus.xml")
    finally:
        ca.close()
    assert proc.stop(timeout=10) == 0  # exited on SIGTERM by itself, not killed


@pytest.mark.ioc
def test_ioc_started_from_a_short_lived_thread_outlives_it(ioc_factory):
    """The IOC is tied to the launching process, not to the thread that started it."""
    import threading

    from ioc_helpers import CA

    started = {}
    thread = threading.Thread(target=lambda: started.update(h=ioc_factory(prefix="adtth:")))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and "h" in started, "the IOC did not start"
    proc = started["h"].process.process
    # a thread-tied death signal (PR_SET_PDEATHSIG) would end the IOC right now
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=3)
    ca = CA("adtth:")
    try:
        assert ca.get("cam1:Acquire_RBV") == 0
    finally:
        ca.close()
    assert started["h"].process.stop(timeout=10) == 0


@pytest.mark.ioc
def test_restart_waits_for_the_new_process(tmp_path):
    """start() after stop() waits for the new process's ready line, not the old one's."""
    ioc = SimulatedIOC(prefix="adtrs:", write_root=tmp_path)
    try:
        ioc.start()
        first_pid = ioc.process.pid
        ioc.stop()
        mark = len(ioc.output)
        ioc.start()
        assert ioc.process.pid != first_pid
        assert any(line.startswith("adtoolkit-ioc ready") for line in ioc.output[mark:]), (
            "start() returned before the restarted IOC was ready"
        )
        assert ioc.ready_line.startswith("adtoolkit-ioc ready prefix=adtrs:")
    finally:
        ioc.stop()


def test_ioc_ends_when_its_launcher_dies():
    """...even when the thread that started it ended long before."""
    import os
    import time

    code = (
        "import os, threading\n"
        "from adtoolkit.ioc.launcher import SimulatedIOC\n"
        "box = []\n"
        "t = threading.Thread(target=lambda: box.append(SimulatedIOC(prefix='orph:').start()))\n"
        "t.start(); t.join()\n"
        "print(box[0].process.pid, flush=True)\n"
        "os._exit(1)  # crash without stopping the IOC\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    pid = int(out.stdout.strip())

    def state() -> str:
        try:
            with open(f"/proc/{pid}/status") as f:
                return next(line for line in f if line.startswith("State")).split()[1]
        except FileNotFoundError:
            return "gone"

    deadline = time.monotonic() + 10
    while state() not in ("Z", "X", "gone") and time.monotonic() < deadline:
        time.sleep(0.05)
    final = state()
    if final not in ("Z", "X", "gone"):
        os.kill(pid, 15)  # do not leave it running if the test fails
    assert final in ("Z", "X", "gone")


def test_unreceived_beacons_are_reported_once_without_tracebacks(tmp_path):
    """No caRepeater on the beacon port: one line, not a traceback per beacon (as rsrv: none).

    The absence of later reports can only be seen over a window: the beacon period
    starts at 20 ms and doubles, so about six more sends fail within the 2.6 s after
    the first report.
    """
    import time

    from ioc_helpers import wait_for

    from adtoolkit.ioc.launcher import free_port

    port = free_port()
    nobody = free_port(exclude=[port])  # nothing listens there: every beacon is refused
    env = {"EPICS_CAS_BEACON_PORT": str(nobody), "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1"}
    with SimulatedIOC(prefix="bcn:", write_root=tmp_path, port=port, env=env) as proc:
        wait_for(lambda: any("beacons to" in x for x in proc.output), 20, "the beacon report")
        time.sleep(2.6)  # the observation window (see the docstring), not a synchronisation
        output = "".join(proc.output)
    assert output.count("beacons to") == 1, output
    assert "Traceback" not in output and "Failed to send beacon" not in output, output
