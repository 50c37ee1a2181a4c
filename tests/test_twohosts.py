"""IOC and workstation on two "hosts": a full count across a network and a mount boundary.

The simulated IOC runs in its own network namespace (tests/netns.py) at 10.213.N.2 and
writes to ``ioc/data``, a path that exists (bind-mounted) only for the IOC.  The client
runs on the host in a fresh process whose only way to the IOC is EPICS_CA_ADDR_LIST,
and reads the files at ``workstation/mnt/data``.  A bluesky count with databroker
read-back must give the frames that are in the file, which proves the path templates
and the CA configuration for real.  A control shows that without the address list the
client cannot find the IOC at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest
from netns import NetNamespace, SplitDirectory, bare_env, ioc_argv, require_netns

pytestmark = [pytest.mark.ioc, pytest.mark.slow]

READY = "adtoolkit-ioc ready"

CLIENT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, h5py, epics
    import bluesky.plans as bp, databroker
    from bluesky import RunEngine
    from adtoolkit.devices import make_detector

    prefix, ioc_dir, read_dir = sys.argv[1:4]
    for pv, value in [("SizeX", 64), ("SizeY", 48), ("DataType", 1), ("AcquireTime", 0.001),
                      ("AcquirePeriod", 0.0)]:
        assert epics.caput(prefix + "cam1:" + pv, value, wait=True, timeout=10) == 1, pv
    det = make_detector(prefix, name="two", plugins=("hdf1",), write_path=ioc_dir + "/%Y/",
                        read_path=read_dir + "/%Y/", frames_per_point=2, connection_timeout=10)
    RE = RunEngine({})
    catalog = databroker.temp().v2
    docs = []
    RE.subscribe(catalog.v1.insert)
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    (uid,) = RE(bp.count([det], num=3))
    images = catalog[uid].primary.read()["two_image"].values
    ioc_file = epics.caget(prefix + "HDF1:FullFileName_RBV", as_string=True)
    resource = next(d for n, d in docs if n == "resource")
    with h5py.File(det.hdf1.read_file_name, "r") as f:
        on_disk = f["/entry/data/data"][()]
    print(json.dumps({
        "shape": list(images.shape),
        "equal_to_file": bool(np.array_equal(images.reshape(on_disk.shape), on_disk)),
        "nonzero": bool(images.any()),
        "ioc_file": ioc_file,
        "read_file": det.hdf1.read_file_name,
        "resource_root": resource["root"],
        "ioc_dir_listing": os.listdir(ioc_dir),
    }))
    """
)

CONTROL = textwrap.dedent(
    """
    import sys, epics
    value = epics.caget(sys.argv[1] + "cam1:Acquire_RBV", timeout=3, connection_timeout=3)
    print("UNREACHABLE" if value is None else "CONNECTED", sys.argv[1])
    sys.exit(0 if value is None else 1)
    """
)


def _wait_ready(proc: subprocess.Popen, lines: list[str], timeout: float) -> None:
    ready = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(READY):
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(timeout) or proc.poll() is not None:
        raise AssertionError("IOC in the namespace did not start:\n" + "".join(lines[-30:]))


def test_count_across_network_and_mount_boundary(tmp_path):
    require_netns()
    with NetNamespace() as ns, SplitDirectory(tmp_path / "disk") as split:
        ioc = ns.popen(
            ioc_argv("two:", split.ioc_path, "--interfaces", ns.address),
            mounts=split.ioc_mounts,
            env=bare_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        _wait_ready(ioc, lines, 60)

        ca = {"EPICS_CA_ADDR_LIST": ns.address, "EPICS_CA_AUTO_ADDR_LIST": "NO"}
        ca["EPICS_CA_MAX_ARRAY_BYTES"] = str(16 * 2**20)
        # the control (searching loopback, where a same-host IOC would be) runs alongside
        control = subprocess.Popen(
            [sys.executable, "-c", CONTROL, "two:"],
            env=bare_env(EPICS_CA_ADDR_LIST="127.0.0.1", EPICS_CA_AUTO_ADDR_LIST="NO"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            res = subprocess.run(
                [sys.executable, "-c", CLIENT, "two:", str(split.ioc_path), str(split.read_path)],
                env=bare_env(**ca),
                capture_output=True,
                text=True,
                timeout=240,
            )
            control_out, _ = control.communicate(timeout=60)
        finally:
            if control.poll() is None:
                control.kill()
        assert res.returncode == 0, res.stdout + res.stderr + "".join(lines[-20:])
        out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shape"] == [3, 2, 48, 64]
    assert out["equal_to_file"] and out["nonzero"]
    assert out["ioc_file"].startswith(f"{split.ioc_path}/")
    assert out["read_file"] == str(split.to_read_path(out["ioc_file"]))
    assert out["read_file"].startswith(out["resource_root"])
    assert out["resource_root"].startswith(str(split.read_path.parent))  # workstation side
    assert out["ioc_dir_listing"] == [], "the client saw files at the IOC's path"
    assert (split.storage / out["ioc_file"][len(str(split.ioc_path)) + 1 :]).is_file()
    assert control.returncode == 0 and "UNREACHABLE two:" in control_out, control_out
