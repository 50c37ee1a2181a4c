"""Security of the simulated IOC: where it listens, and where a CA client can make it write.

- It listens on loopback unless told otherwise: checked on the process's own sockets and,
  inside a network namespace, from the outside (the host cannot connect).
- ``--write-root`` confines every file: no FilePath / FileName / FileTemplate /
  TempSuffix / CreateDirectory a client sends may create or change anything outside it,
  whether by ``..``, an absolute path or a symlink, for every file-writing plugin.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import epics
import pytest
from netns import (
    NetNamespace,
    bare_env,
    free_port,
    ioc_argv,
    listening_sockets,
    require_netns,
    wait_for_tcp,
)

pytestmark = [
    pytest.mark.ioc,
    pytest.mark.sim_only("write-root confinement is the simulated IOC's own safeguard"),
]

TIMEOUT = 10.0

LOOPBACK = {"127.0.0.1", "::1"}


# -- where the IOC listens ----------------------------------------------------------------


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_ioc_listens_on_loopback_only_by_default(tmp_path):
    """Started with no EPICS_CAS_INTF_ADDR_LIST and no --interfaces, every socket is loopback."""
    port = free_port()
    env = bare_env(EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port))
    proc = subprocess.Popen(
        ioc_argv("sec:", tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_tcp("127.0.0.1", port, 20, proc)
        sockets = listening_sockets(proc.pid)
    finally:
        _stop(proc)
    assert ("tcp", "127.0.0.1", port) in sockets, sockets
    assert any(proto.startswith("udp") for proto, _, _ in sockets), sockets
    exposed = [s for s in sockets if s[1] not in LOOPBACK]
    assert exposed == [], f"IOC listens beyond loopback: {exposed}"


@pytest.fixture
def ns():
    require_netns()
    with NetNamespace() as namespace:
        yield namespace


def _ioc_in_namespace(ns, tmp_path, *extra: str) -> subprocess.Popen:
    # Inside its own namespace the IOC may use the standard CA port: nothing else is there.
    proc = ns.popen(
        ioc_argv("sec:", tmp_path, *extra),
        env=bare_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # wait from inside: loopback of the namespace
    probe = (
        "import socket,sys,time\n"
        "end=time.monotonic()+20\n"
        "while time.monotonic()<end:\n"
        "    try:\n"
        "        socket.create_connection((sys.argv[1],5064),timeout=1).close(); sys.exit(0)\n"
        "    except OSError: time.sleep(0.05)\n"
        "sys.exit(1)\n"
    )
    host = extra[extra.index("--interfaces") + 1] if "--interfaces" in extra else "127.0.0.1"
    res = ns.run([sys.executable, "-c", probe, host], timeout=30)
    assert res.returncode == 0, f"IOC in {ns.name} never listened on {host}:5064"
    return proc


def _connect_refused(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_default_ioc_cannot_be_reached_from_another_host(ns, tmp_path):
    proc = _ioc_in_namespace(ns, tmp_path)
    assert all(s[1] in LOOPBACK for s in listening_sockets(proc.pid))
    assert _connect_refused(ns.address, 5064)


def test_interfaces_option_exposes_the_ioc_on_purpose(ns, tmp_path):
    """Control for the test above: the same check sees an IOC that was asked to listen."""
    proc = _ioc_in_namespace(ns, tmp_path, "--interfaces", ns.address)
    assert ("tcp", ns.address, 5064) in listening_sockets(proc.pid)
    wait_for_tcp(ns.address, 5064, 10)


# -- write-root confinement ------------------------------------------------------------------


def _put(pv: str, value, wait: bool = True) -> None:
    ok = epics.caput(pv, value, wait=wait, timeout=TIMEOUT, connection_timeout=TIMEOUT)
    assert ok == 1, f"caput {pv} = {value!r} failed ({ok})"


def _get(pv: str, as_string: bool = False):
    # read the record now, not a monitor update that may still trail the put
    pvobj = epics.get_pv(pv, connect=True, timeout=TIMEOUT)
    value = pvobj.get(
        as_string=as_string, timeout=TIMEOUT, use_monitor=False, count=pvobj.nelm or None
    )
    assert value is not None, f"caget {pv} failed"
    return value


def _text(pv: str) -> str:
    return str(_get(pv, as_string=True))


def _wait(pv: str, predicate, timeout: float = TIMEOUT, as_string: bool = False):
    deadline = time.monotonic() + timeout
    while True:
        value = _get(pv, as_string=as_string)
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{pv} = {value!r} still not as expected after {timeout} s")
        time.sleep(0.02)


FILE_PLUGINS = {"HDF1": "h5", "TIFF1": "tif", "JPEG1": "jpg"}


def _set_path(plugin: str, path: str) -> int:
    """Put FilePath, wait for FilePath_RBV to show it (readbacks are I/O Intr, so they
    may lag the put's completion), then return FilePathExists_RBV."""
    _put(plugin + "FilePath", path)
    want = path.rstrip("/") + "/"
    _wait(plugin + "FilePath_RBV", lambda v: v == want, as_string=True)
    return _get(plugin + "FilePathExists_RBV")


class FileWriter:
    """Drives one file plugin of the session IOC over CA: one frame, one file per attempt."""

    def __init__(self, prefix: str, plugin: str):
        self.cam = f"{prefix}cam1:"
        self.p = f"{prefix}{plugin}:"
        self.ext = FILE_PLUGINS[plugin]

    def setup(self) -> None:
        cam, p = self.cam, self.p
        _put(cam + "Acquire", 0)
        for pv, value in [
            ("ImageMode", 0),  # Single
            ("SizeX", 64),
            ("SizeY", 48),
            ("DataType", 0),
            ("ColorMode", 0),
            ("AcquireTime", 0.001),
            ("AcquirePeriod", 0.0),
            ("ArrayCallbacks", 1),
        ]:
            _put(cam + pv, value)
        _put(p + "Capture", 0)
        for pv, value in [
            ("EnableCallbacks", 1),
            ("BlockingCallbacks", 1),
            ("NDArrayPort", _text(cam + "PortName_RBV")),
            ("FileWriteMode", 0),  # Single
            ("AutoSave", 1),
            ("AutoIncrement", 0),
            ("FileNumber", 0),
            ("CreateDirectory", 0),
            ("TempSuffix", ""),
            ("FileTemplate", f"%s%s_%3.3d.{self.ext}"),
        ]:
            _put(p + pv, value)

    def acquire_one(self) -> None:
        """One frame through the plugin (blocking callbacks: done when Acquire is back at 0)."""
        before = _get(self.cam + "ArrayCounter_RBV")
        _put(self.cam + "Acquire", 1, wait=False)
        _wait(self.cam + "ArrayCounter_RBV", lambda v: v > before)
        _wait(self.cam + "Acquire_RBV", lambda v: v == 0)
        _wait(self.cam + "DetectorState_RBV", lambda v: v == 0)

    def attempt(self, path: str, name: str = "f", template: str | None = None) -> None:
        _set_path(self.p, path)
        _put(self.p + "FileName", name)
        if template is not None:
            _put(self.p + "FileTemplate", template)
        self.acquire_one()


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    """Every path below ``root`` with size and mtime: what an escape would change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def victim(ioc):
    """A directory beside (outside) the IOC's write root, with one precious file in it."""
    root = Path(ioc.write_root)
    outside = root.parent / f"victim-{secrets.token_hex(4)}"
    outside.mkdir()
    (outside / "precious.h5").write_bytes(b"do not overwrite")
    before = _snapshot(outside)
    yield outside
    assert _snapshot(outside) == before, f"the IOC changed {outside}, outside its write root"
    assert (outside / "precious.h5").read_bytes() == b"do not overwrite"


@pytest.fixture(params=sorted(FILE_PLUGINS))
def writer(ioc, request):
    w = FileWriter(ioc.prefix, request.param)
    w.setup()
    yield w
    _put(w.p + "FilePath", str(ioc.write_root))
    _put(w.p + "EnableCallbacks", 0)


def _escape_paths(root: Path, outside: Path) -> dict[str, str]:
    rel = os.path.relpath(outside, root)
    return {
        "dotdot": f"{root}/{rel}/",
        "dotdot-deep": f"{root}/a/../../{outside.name}/",
        "absolute": f"{outside}/",
        "symlink": f"{root}/link-{outside.name}/",
    }


@pytest.mark.parametrize("how", ["dotdot", "dotdot-deep", "absolute", "symlink"])
def test_file_path_outside_root_is_refused(ioc, writer, victim, how):
    root = Path(ioc.write_root)
    link = root / f"link-{victim.name}"
    link.symlink_to(victim, target_is_directory=True)
    try:
        path = _escape_paths(root, victim)[how]
        assert _set_path(writer.p, path) == 0, f"{path} accepted as existing"
        message = _text(writer.p + "WriteMessage")
        assert "root" in message.lower(), f"WriteMessage does not say why: {message!r}"
        writer.attempt(path, name="precious", template=f"%s%s.{writer.ext}")
        assert _get(writer.p + "WriteStatus") == 1, "no Write error for a path outside the root"
    finally:
        link.unlink()


@pytest.mark.parametrize(
    "name, template",
    [
        ("{rel}/evil", None),
        ("f", "%s{rel}/%s_%3.3d.{ext}"),
        ("f", "{abs}/%s%s_%3.3d.{ext}"),
        ("f", "{abs}/evil.{ext}"),
    ],
    ids=["name-dotdot", "template-dotdot", "template-absolute", "template-no-format"],
)
def test_file_name_and_template_cannot_leave_root(ioc, writer, victim, name, template):
    inside = Path(ioc.write_root) / "sec-inside"
    inside.mkdir(exist_ok=True)
    fill = {"rel": os.path.relpath(victim, inside), "ext": writer.ext, "abs": str(victim)}
    writer.attempt(
        f"{inside}/",
        name=name.format(**fill),
        template=template.format(**fill) if template else None,
    )
    assert _get(writer.p + "WriteStatus") == 1, "no Write error for a file outside the root"
    assert _text(writer.p + "WriteMessage"), "a refused write must say why"


def test_symlinked_file_name_is_not_followed(ioc, writer, tmp_path):
    """A file name inside the root that is a symlink to a file outside is not written through."""
    outside = tmp_path / "precious.h5"
    outside.write_bytes(b"do not overwrite")
    inside = Path(ioc.write_root) / "sec-links"
    inside.mkdir(exist_ok=True)
    trap = inside / f"trap_000.{writer.ext}"
    trap.unlink(missing_ok=True)
    trap.symlink_to(outside)
    try:
        writer.attempt(f"{inside}/", name="trap")
        assert outside.read_bytes() == b"do not overwrite", "written through the symlink"
        assert _get(writer.p + "WriteStatus") == 1
    finally:
        trap.unlink(missing_ok=True)


def test_temp_suffix_cannot_leave_root(ioc, victim):
    w = FileWriter(ioc.prefix, "HDF1")
    w.setup()
    inside = Path(ioc.write_root) / "sec-temp"
    inside.mkdir(exist_ok=True)
    rel = os.path.relpath(victim, inside)
    _put(w.p + "TempSuffix", f"/{rel}/evil"[:39])
    try:
        w.attempt(f"{inside}/", name="t")
    finally:
        _put(w.p + "TempSuffix", "")
    assert not list(victim.glob("evil*"))


def test_create_directory_cannot_create_outside_root(ioc, victim):
    w = FileWriter(ioc.prefix, "HDF1")
    w.setup()
    root = Path(ioc.write_root)
    target = victim / "made" / "by" / "ioc"
    for depth in (-5, 1, 2):
        _put(w.p + "CreateDirectory", depth)
        assert _set_path(w.p, f"{root}/{os.path.relpath(target, root)}/") == 0
        assert _set_path(w.p, f"{target}/") == 0
    assert not (victim / "made").exists()
    _put(w.p + "CreateDirectory", 0)


def test_legitimate_write_after_refusals_still_works(ioc, writer):
    """The refusals above leave the plugin serving: a file inside the root is written."""
    root = Path(ioc.write_root)
    inside = root / f"sec-ok-{writer.p.split(':')[-2]}"
    inside.mkdir(exist_ok=True)
    writer.attempt(f"{inside}/", name="good")
    assert _get(writer.p + "WriteStatus") == 0, _text(writer.p + "WriteMessage")
    written = inside / f"good_000.{writer.ext}"
    read_side = Path(ioc.read_root) / written.relative_to(root)
    assert read_side.stat().st_size > 0
    assert _text(writer.p + "FullFileName_RBV") == str(written)
