"""Disk full, file too large, permission denied, missing directory.

Each fault gives a clear error at stage or during the run that carries the OS error,
the IOC reports it (WriteStatus "Write error", WriteMessage with the OS error, Capture
back to 0), the file written before the fault is untouched, and once the fault is gone
the next count succeeds on the same IOC.

How the faults are made, on a real IOC process:
- file too large: RLIMIT_FSIZE set on the running IOC (``prlimit``); Python ignores
  SIGXFSZ, so writes past the limit fail with EFBIG;
- disk full: the data directory is a 16 MiB tmpfs, filled to 1 MiB free (ENOSPC);
- permission denied: a directory the IOC may not write, with the IOC started without
  CAP_DAC_OVERRIDE (it runs as root here, and root ignores permission bits);
- missing directory: the mount point of the path template does not exist.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import resource
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest
from netns import ca_get, ca_put, wait_pv

pytestmark = [pytest.mark.ioc, pytest.mark.slow]

BIG = 100  # frames of 64x48 UInt8 in the faulting count: ~300 kB


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _prepare(prefix: str) -> None:
    for pv, value in [
        ("SizeX", 64),
        ("SizeY", 48),
        ("DataType", 1),
        ("AcquireTime", 0.0),
        ("AcquirePeriod", 0.0),
    ]:
        ca_put(f"{prefix}cam1:{pv}", value)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({res.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, timeout=20).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


class Setup:
    def __init__(self, handle, directory: Path):
        import bluesky.plans as bp
        import databroker
        from bluesky import RunEngine

        from adtoolkit.devices import make_detector

        self.handle, self.bp = handle, bp
        _prepare(handle.prefix)
        directory.mkdir(parents=True, exist_ok=True)
        self.det = make_detector(
            handle.prefix,
            name="ddet",
            plugins=("hdf1",),
            write_path=f"{directory}/",
            read_path=f"{directory}/",
            frames_per_point=2,
        )
        self.RE = RunEngine({})
        self.catalog = databroker.temp().v2
        self.RE.subscribe(self.catalog.v1.insert)

    def count(self, frames: int):
        self.det.frames_per_point = frames
        (uid,) = self.RE(self.bp.count([self.det], num=1))
        images = self.catalog[uid].primary.read()["ddet_image"].values
        assert images.shape == (1, frames, 48, 64)
        return Path(self.det.hdf1.read_file_name)

    def failing_count(self, errno_: int) -> str | None:
        """The faulting count; returns why it is wrong when the *run* raised nothing."""
        oserror = (os.strerror(errno_), f"[Errno {errno_}]")
        self.det.frames_per_point = BIG
        outcome = None
        try:
            self.RE(self.bp.count([self.det], num=1))
        except Exception as exc:
            outcome = exc
        hdf = self.handle.prefix + "HDF1:"
        wait_pv(hdf + "Capture_RBV", lambda v: v == 0)
        assert ca_get(hdf + "WriteStatus") == 1, "WriteStatus is not 'Write error'"
        ioc_message = str(ca_get(hdf + "WriteMessage", as_string=True))
        assert any(e in ioc_message for e in oserror), (
            f"WriteMessage {ioc_message!r} lacks {oserror}"
        )
        if outcome is None:
            return (
                f"the run ended without an error although the IOC reports "
                f"WriteStatus 'Write error': {ioc_message!r}"
            )
        message = f"{type(outcome).__name__}: {outcome}"
        print("error the user sees:", message)
        if not any(e in message for e in oserror):
            return (
                f"the error the user sees lacks the OS error the IOC reports ({ioc_message!r}): "
                f"{message}"
            )
        return None


def _check_serving(setup: Setup, earlier: Path, digest: str, problem: str | None) -> None:
    assert _sha(earlier) == digest, f"{earlier} changed"
    with h5py.File(earlier, "r") as f:
        assert f["/entry/data/data"].shape == (2, 48, 64)
    path = setup.count(3)
    with h5py.File(path, "r") as f:
        assert f["/entry/data/data"].shape == (3, 48, 64)
    assert not problem, problem


def test_file_too_large(ioc_factory):
    handle = ioc_factory(prefix="fsz:")
    setup = Setup(handle, handle.write_root / "fsize")
    earlier = setup.count(2)
    digest = _sha(earlier)
    pid = handle.process.process.pid
    limit = earlier.stat().st_size + 8192
    # only the soft limit: raising a hard limit again needs CAP_SYS_RESOURCE
    old = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        problem = setup.failing_count(errno.EFBIG)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, old)
    _check_serving(setup, earlier, digest, problem)


def test_disk_full(ioc_factory):
    handle = ioc_factory(prefix="full:")
    with tmpfs(handle.write_root / "small", "16m") as small:
        setup = Setup(handle, small / "data")
        earlier = setup.count(2)
        digest = _sha(earlier)
        ballast = small / "ballast"
        free = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        ballast.write_bytes(b"\0" * max(0, free - 2**20))  # 1 MiB left
        problem = setup.failing_count(errno.ENOSPC)
        ballast.unlink()
        _check_serving(setup, earlier, digest, problem)


def test_permission_denied(ioc_factory, monkeypatch):
    from adtoolkit.ioc.launcher import SimulatedIOC

    if os.geteuid() != 0:
        pytest.skip("permission bits bind this IOC already; the setpriv route needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to start the IOC without CAP_DAC_OVERRIDE")
    plain = SimulatedIOC.command
    monkeypatch.setattr(
        SimulatedIOC,
        "command",
        lambda self: (
            ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] + plain(self)
        ),
    )
    handle = ioc_factory(prefix="perm:")
    setup = Setup(handle, handle.write_root / "ro")
    earlier = setup.count(2)
    digest = _sha(earlier)
    os.chmod(earlier.parent, 0o555)
    try:
        problem = setup.failing_count(errno.EACCES)
    finally:
        os.chmod(earlier.parent, 0o755)
    _check_serving(setup, earlier, digest, problem)


def test_missing_mount_point(ioc_factory, tmp_path):
    """The template's mount point does not exist: stage fails naming both paths."""
    from adtoolkit.devices import FilePathError, make_detector

    handle = ioc_factory(prefix="miss:")
    _prepare(handle.prefix)
    write = f"{handle.write_root}/not-mounted/%Y/"
    read = f"{tmp_path}/workstation/%Y/"
    det = make_detector(
        handle.prefix, name="mdet", plugins=("hdf1",), write_path=write, read_path=read
    )
    import bluesky.plans as bp
    from bluesky import RunEngine

    RE = RunEngine({})
    with pytest.raises(FilePathError) as info:
        RE(bp.count([det], num=1))
    message = str(info.value)
    assert f"{handle.write_root}/not-mounted/" in message and f"{tmp_path}/workstation/" in message
    assert not (handle.write_root / "not-mounted").exists()
    assert ca_get(handle.prefix + "HDF1:Capture_RBV") == 0
    # the IOC keeps serving: the same detector with a path that exists works
    good = Setup(handle, handle.write_root / "good")
    path = good.count(2)
    assert path.parent == handle.write_root / "good"
