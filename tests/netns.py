"""A second "host" for tests: a Linux network namespace with its own address.

A beamline IOC runs on another machine: the workstation reaches it only through
``EPICS_CA_ADDR_LIST`` and sees its data directory at another path.  To test that for
real on one machine, :class:`NetNamespace` creates a network namespace joined to the
host by a veth pair (host side ``10.213.N.1/30``, inside ``10.213.N.2/30``) and runs
commands inside it with ``ip netns exec``.  :class:`SplitDirectory` gives one storage
directory two names: the path the IOC writes to (bind-mounted only inside the IOC's
own mount namespace) and the path the workstation reads from.

Rules this module keeps, because it runs as root on shared machines:

- every name is unique per run (pid + random token), so parallel runs never collide,
  and a crashed run's leftovers (its pid gone) are removed by the next run;
- traffic only ever goes to addresses inside namespaces created here, or loopback;
- everything created is removed on exit, also when the body raises, and processes left
  running inside the namespace are killed first.

Where namespaces cannot be made (not root, no ``ip``, no kernel support)
:func:`netns_unavailable_reason` says why, and :func:`require_netns` turns that into a
pytest skip carrying the reason.

The module also holds the small host-side tools the reliability, security and two-hosts
tests share: starting ``adtoolkit ioc`` by hand (:func:`ioc_argv`, :func:`bare_env`),
what a process listens on or holds open (:func:`listening_sockets`, :func:`open_files`),
and Channel Access puts/gets/waits that fail naming the PV (:func:`ca_put`,
:func:`ca_get`, :func:`wait_pv`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

#: Every namespace this module creates is called ``adtk-<pid>-<token>``.
NAME_PREFIX = "adtk-"
#: The /16 the /30 links are carved from; test traffic never leaves it.
SUBNET = ipaddress.ip_network("10.213.0.0/16")
_LOCK_FILE = Path("/tmp/adtoolkit-netns.lock")
_CMD_TIMEOUT = 20.0


class NetnsError(RuntimeError):
    """A namespace operation failed; the message carries the command and its stderr."""


class NetnsUnavailable(NetnsError):
    """Network namespaces cannot be created here (the reason is the message)."""


def _ip(*args: str, check: bool = True, timeout: float = _CMD_TIMEOUT) -> str:
    cmd = ["ip", *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{shlex.join(cmd)}: no answer within {timeout} s") from exc
    if check and res.returncode != 0:
        raise NetnsError(f"{shlex.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (ip netns add); not running as root"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"{NAME_PREFIX}{os.getpid()}-probe{secrets.token_hex(2)}"
    try:
        _ip("netns", "add", probe)
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    _ip("netns", "del", probe, check=False)
    return None


def require_netns() -> None:
    """Skip the calling test, with the reason, where namespaces cannot be made."""
    import pytest

    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    """Names of all network namespaces on this machine."""
    out = _ip("netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces left behind by runs whose process is gone; return their names."""
    removed = []
    for name in list_namespaces():
        if not name.startswith(NAME_PREFIX):
            continue
        try:
            pid = int(name[len(NAME_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            _kill_namespace_processes(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _kill_namespace_processes(name: str, timeout: float = 5.0) -> None:
    pids = [int(p) for p in _ip("netns", "pids", name, check=False).split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _pid_alive(p) and not _is_zombie(p)]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for line in _ip("-o", "-4", "addr", "show").splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    return nets


def _choose_link() -> ipaddress.IPv4Network:
    """A /30 inside :data:`SUBNET` that no interface on this host uses yet."""
    used = _used_networks()
    candidates = list(SUBNET.subnets(new_prefix=30))
    # Start at a per-process offset so parallel runs rarely even look at the same /30.
    start = (os.getpid() * 7919 + secrets.randbelow(1024)) % len(candidates)
    for i in range(len(candidates)):
        net = candidates[(start + i) % len(candidates)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise NetnsError(f"no free /30 left in {SUBNET}")


class NetNamespace:
    """A network namespace with its own address, reachable from the host over a veth pair.

    Use as a context manager; attributes once entered:

    - ``name``: the namespace (``ip netns exec NAME ...``);
    - ``host_address`` / ``address``: the host side and the inside address (strings);
    - ``host_ifname`` / ``ifname``: the two ends of the veth pair.
    """

    def __init__(self) -> None:
        token = secrets.token_hex(3)
        self.name = f"{NAME_PREFIX}{os.getpid()}-{token}"
        self.host_ifname = f"adh{token}"
        self.ifname = f"adi{token}"
        self.network: ipaddress.IPv4Network | None = None
        self.host_address = ""
        self.address = ""
        self._procs: list[subprocess.Popen] = []
        self._created = False

    # -- life cycle -------------------------------------------------------------------
    def __enter__(self) -> NetNamespace:
        reason = netns_unavailable_reason()
        if reason is not None:
            raise NetnsUnavailable(reason)
        remove_stale_namespaces()
        try:
            with open(_LOCK_FILE, "a") as lock:
                # Choosing the /30 and assigning it must be atomic across parallel runs.
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._create()
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        self.network = _choose_link()
        host, inside = list(self.network.hosts())
        self.host_address, self.address = str(host), str(inside)
        prefix = self.network.prefixlen
        _ip("netns", "add", self.name)
        self._created = True
        _ip("link", "add", self.host_ifname, "type", "veth", "peer", "name", self.ifname)
        _ip("link", "set", self.ifname, "netns", self.name)
        _ip("addr", "add", f"{self.host_address}/{prefix}", "dev", self.host_ifname)
        _ip("link", "set", self.host_ifname, "up")
        self.ip("addr", "add", f"{self.address}/{prefix}", "dev", self.ifname)
        self.ip("link", "set", self.ifname, "up")
        self.ip("link", "set", "lo", "up")

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill what still runs inside, delete the namespace and the veth pair. Idempotent."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        if self._created:
            _kill_namespace_processes(self.name)
            _ip("netns", "del", self.name, check=False)
            self._created = False
        # Deleting the namespace destroys the inside end and with it the pair; this is
        # for a failure between "link add" and "set netns".
        if self.host_ifname in _ip("-o", "link", "show", check=False):
            _ip("link", "del", self.host_ifname, check=False)

    @property
    def exists(self) -> bool:
        return self.name in list_namespaces()

    # -- running things inside ----------------------------------------------------------
    def ip(self, *args: str, check: bool = True) -> str:
        """``ip -n NAME ARGS``: inspect or configure the namespace's network."""
        return _ip("-n", self.name, *args, check=check)

    def command(
        self, argv: Sequence[str], mounts: Mapping[os.PathLike | str, os.PathLike | str] = ()
    ) -> list[str]:
        """The argv that runs ``argv`` inside the namespace.

        ``mounts`` maps a source directory to a target path; each is bind-mounted only in
        the mount namespace that ``ip netns exec`` creates for this command, so the target
        path shows the source to the command and nothing to anyone else.
        """
        argv = [os.fspath(a) for a in argv]
        if mounts:
            binds = " && ".join(
                f"mount --bind {shlex.quote(os.fspath(src))} {shlex.quote(os.fspath(dst))}"
                for src, dst in dict(mounts).items()
            )
            argv = ["sh", "-c", f'{binds} && exec "$@"', "netns-exec", *argv]
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = _CMD_TIMEOUT,
        mounts: Mapping[os.PathLike | str, os.PathLike | str] = (),
        **kwargs,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the namespace and wait for it (with a timeout)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(argv, mounts), timeout=timeout, **kwargs)

    def popen(
        self,
        argv: Sequence[str],
        *,
        mounts: Mapping[os.PathLike | str, os.PathLike | str] = (),
        **kwargs,
    ) -> subprocess.Popen:
        """Start ``argv`` inside the namespace; it is killed when the namespace closes."""
        proc = subprocess.Popen(self.command(argv, mounts), **kwargs)
        self._procs.append(proc)
        return proc


@contextlib.contextmanager
def bind_mount(source: os.PathLike | str, target: os.PathLike | str) -> Iterator[Path]:
    """Bind-mount ``source`` on ``target`` (in this mount namespace) and always unmount."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "--bind", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=_CMD_TIMEOUT,
    )
    if res.returncode != 0:
        raise NetnsError(f"mount --bind {source} {target} failed: {res.stderr.strip()}")
    try:
        yield target
    finally:
        res = subprocess.run(["umount", str(target)], capture_output=True, timeout=_CMD_TIMEOUT)
        if res.returncode != 0:  # busy: detach now, the kernel finishes when it is free
            subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=60)


class SplitDirectory:
    """One storage directory under two names, like an IOC host and a workstation.

    Laid out under ``base``::

        base/storage                 the disk that really holds the files
        base/ioc/data                ``ioc_path``: where the IOC is told to write; on the host
                                     an empty directory, the storage is bind-mounted on it
                                     only inside the IOC's mount namespace (``ioc_mounts``)
        base/workstation/mnt/data    ``read_path``: where the client reads, a bind mount of
                                     the storage (root) or a symlink to it (``mode="symlink"``)

    So a client that wrongly opens the IOC's path finds nothing, as on a real beamline.
    """

    def __init__(self, base: os.PathLike | str, mode: str = "bind") -> None:
        if mode not in ("bind", "symlink"):
            raise ValueError(f"mode must be 'bind' or 'symlink', not {mode!r}")
        base = Path(base)
        self.mode = mode
        self.storage = base / "storage"
        self.ioc_path = base / "ioc" / "data"
        self.read_path = base / "workstation" / "mnt" / "data"
        self._stack = contextlib.ExitStack()

    @property
    def ioc_mounts(self) -> dict[Path, Path]:
        """Pass as ``mounts=`` to :meth:`NetNamespace.popen` for the IOC's process."""
        return {self.storage: self.ioc_path}

    def __enter__(self) -> SplitDirectory:
        self.storage.mkdir(parents=True, exist_ok=True)
        self.ioc_path.mkdir(parents=True, exist_ok=True)
        try:
            if self.mode == "bind":
                self._stack.enter_context(bind_mount(self.storage, self.read_path))
            else:
                self.read_path.parent.mkdir(parents=True, exist_ok=True)
                self.read_path.symlink_to(self.storage, target_is_directory=True)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
        if self.mode == "symlink" and self.read_path.is_symlink():
            self.read_path.unlink()

    def to_read_path(self, ioc_file: os.PathLike | str) -> Path:
        """The workstation path of a file the IOC names by its own path."""
        try:
            relative = Path(ioc_file).relative_to(self.ioc_path)
        except ValueError:
            raise ValueError(
                f"IOC file {ioc_file} is outside the IOC directory {self.ioc_path} "
                f"(mapped to {self.read_path} on the workstation)"
            ) from None
        return self.read_path / relative


# -- starting an IOC process by hand ------------------------------------------------------
# The project's SimulatedIOC launcher always sets loopback interfaces and a free port.  The
# security and two-hosts tests need the IOC as it starts *without* that help (its own
# defaults) or inside a namespace, so they build the command themselves.


def ioc_argv(prefix: str, write_root: os.PathLike | str, *extra: str) -> list[str]:
    """``python -m adtoolkit ioc`` with a prefix and a write root."""
    return [
        sys.executable,
        "-m",
        "adtoolkit",
        "ioc",
        "--prefix",
        prefix,
        "--write-root",
        os.fspath(write_root),
        *extra,
    ]


def bare_env(**epics: str) -> dict[str, str]:
    """This process's environment without any EPICS_* variable, plus ``epics``.

    PYTHONPATH is made to include this checkout's ``src`` so a subprocess imports the
    adtoolkit under test, not an installed one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.update(epics)
    return env


def wait_for_tcp(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None):
    """Wait until ``host:port`` accepts a TCP connection; raise naming both on timeout."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NetnsError(f"process exited with {proc.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise NetnsError(f"{host}:{port} did not accept a connection within {timeout} s ({last})")


def free_port() -> int:
    """A TCP and UDP port that is free on loopback right now."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise NetnsError("no free port found")


# -- what a process listens on ----------------------------------------------------------------


def _decode_address(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # /proc prints IPv6 as four host-order 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return str(ip), int(port, 16)


def listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """``(proto, address, port)`` of every TCP listening or UDP bound socket of ``pid``.

    Read from /proc (no psutil needed): the process's socket inodes from /proc/PID/fd,
    matched against /proc/PID/net/{tcp,tcp6,udp,udp6}, which describe the process's own
    network namespace.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(FileNotFoundError):
            lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
            for line in lines:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if inode not in inodes:
                    continue
                if proto.startswith("tcp") and state != "0A":  # 0A: LISTEN
                    continue
                address, port = _decode_address(local)
                found.append((proto, address, port))
    return sorted(set(found))


# -- Channel Access and process helpers for the reliability tests -----------------------------
# (pyepics is imported lazily: the client CA environment must be set before its context.)

CA_TIMEOUT = 10.0


def ca_put(pv: str, value, wait: bool = True, timeout: float = CA_TIMEOUT) -> None:
    """caput that raises, naming the PV, when the put fails or times out."""
    import epics

    ok = epics.caput(pv, value, wait=wait, timeout=timeout, connection_timeout=timeout)
    if ok != 1:
        raise AssertionError(f"caput {pv} = {value!r} failed ({ok})")


def ca_get(pv: str, as_string: bool = False, timeout: float = CA_TIMEOUT):
    """A fresh caget that raises, naming the PV, when it does not answer."""
    import epics

    # read the record, not pyepics' cached monitor value: a monitor update may still be on
    # its way when the put that changed the record has already completed (on a real IOC too)
    pvobj = epics.get_pv(pv, connect=True, timeout=timeout)
    value = None
    if pvobj.connected:
        value = pvobj.get(
            as_string=as_string, timeout=timeout, use_monitor=False, count=pvobj.nelm or None
        )
    if value is None:
        raise AssertionError(f"caget {pv}: no answer within {timeout} s")
    return value


def wait_pv(pv: str, predicate, timeout: float = CA_TIMEOUT, as_string: bool = False):
    """Poll ``pv`` until ``predicate(value)``; raise with the last value on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = ca_get(pv, as_string=as_string, timeout=max(1.0, deadline - time.monotonic()))
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{pv} = {value!r}: condition not met within {timeout} s")
        time.sleep(0.02)


def open_files(pid: int, under: os.PathLike | str) -> list[str]:
    """Files below ``under`` that process ``pid`` holds open (from /proc/PID/fd)."""
    root = os.path.realpath(under)
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(root + os.sep):
                found.append(target)
    return sorted(found)
