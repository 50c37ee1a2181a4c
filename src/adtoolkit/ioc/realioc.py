"""Start the real areaDetector simDetector IOC (ADCore R3-14, one static binary) as a subprocess.

The real IOC is the judge of how ADCore behaves: tests and benchmarks run the same
client code against it and against the simulated IOC.  It comes as a tarball
(``real-adsim-runtime.tar.gz``, see its README) that is unpacked into a private
directory; its ``run.sh`` serves Channel Access on 127.0.0.1:PORT and pvAccess on
PORT+2 (UDP) / PORT+3 (TCP), which is why :func:`free_port_block` hands out four
consecutive free ports.

    with RealIOC(tarball, prefix="adtr:", port=free_port_block(4)[0]) as ioc:
        ...

Nothing here imports pyepics or ophyd (readiness is seen on the IOC's own output).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from adtoolkit.ioc.launcher import IOCProcess, IOCStartError, client_env, terminate

#: iocInit's last line: every record is loaded and CA serves them
READY = "iocRun: All initialization complete"
#: where the tarball lives relative to a checkout next to ``shared/`` (the project's CI layout)
TARBALL_NAME = "real-adsim-runtime.tar.gz"


def find_tarball(start: str | os.PathLike | None = None) -> Path | None:
    """``../shared/real-adsim/real-adsim-runtime.tar.gz`` seen from ``start`` or a parent.

    ``ADTOOLKIT_REAL_ADSIM`` (a path to the tarball) wins.  None when absent: a
    user's clone has no ``shared/`` directory beside it.
    """
    env = os.environ.get("ADTOOLKIT_REAL_ADSIM")
    if env:
        path = Path(env)
        return path if path.is_file() else None
    here = Path(start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        candidate = base.parent / "shared" / "real-adsim" / TARBALL_NAME
        if candidate.is_file():
            return candidate
    return None


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with contextlib.closing(socket.socket(socket.AF_INET, kind)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_block(n: int = 4, exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """``n`` consecutive ports, each free for TCP and UDP on 127.0.0.1 (CA, CA+1, PVA, PVA)."""
    for _ in range(200):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as tcp:
            tcp.bind(("127.0.0.1", 0))
            first = tcp.getsockname()[1]
        block = list(range(first, first + n))
        if block[-1] < 65536 and not exclude & set(block) and all(map(_port_free, block)):
            return block
    raise RuntimeError(f"no {n} consecutive free ports found on 127.0.0.1")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RealIOC(IOCProcess):
    """The real simDetector IOC in a subprocess, unpacked from its runtime tarball.

    ``write_root`` is where tests point FilePath (the IOC writes wherever FilePath
    points; it runs as this user).  ``unpack_dir`` is reused when it already holds
    the unpacked tree.
    """

    def __init__(
        self,
        tarball: str | os.PathLike,
        prefix: str = "adtr:",
        port: int | None = None,
        write_root: str | os.PathLike | None = None,
        unpack_dir: str | os.PathLike | None = None,
        timeout: float = 120.0,  # ~2-3 s alone; far longer on a loaded 2-core machine
        env: dict[str, str] | None = None,
    ) -> None:
        self.tarball = Path(tarball)
        self.prefix = prefix
        self.port = port if port is not None else free_port_block(4)[0]
        self.timeout = timeout
        #: extra environment, e.g. RA_CA_ADDR_LIST: more IOCs its own CA client searches
        #: (CA links, EPICS_PV attributes naming PVs of other IOCs)
        self.extra_env = dict(env or {})
        self._tmp: tempfile.TemporaryDirectory | None = None
        if unpack_dir is None or write_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="adtoolkit-real-ioc-")
        base = Path(self._tmp.name) if self._tmp else None
        self.unpack_dir = Path(unpack_dir) if unpack_dir is not None else base / "runtime"
        self.write_root = Path(write_root) if write_root is not None else base / "data"
        self.read_root = self.write_root
        self.process: subprocess.Popen | None = None
        self.output: deque[str] = deque(maxlen=2000)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.startup_time: float | None = None

    @property
    def env(self) -> dict[str, str]:
        """Client CA variables reaching this IOC."""
        return client_env([self.port])

    @property
    def run_script(self) -> Path:
        return self.unpack_dir / "real-adsim" / "run.sh"

    @property
    def tools(self) -> Path:
        """The static caget/caput/camonitor/cainfo/pvget of the tarball."""
        return self.unpack_dir / "real-adsim" / "base" / "bin" / "linux-x86_64"

    def unpack(self) -> None:
        if self.run_script.is_file():
            return
        self.unpack_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(self.tarball) as tar:
            tar.extractall(self.unpack_dir, filter="tar")

    def start(self) -> RealIOC:
        if self.process is not None:
            return self
        self.unpack()
        self.write_root.mkdir(parents=True, exist_ok=True)
        self._ready = threading.Event()
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            [str(self.run_script), self.prefix, str(self.port)],
            env={**os.environ, **self.extra_env},
            stdin=subprocess.DEVNULL,  # not a terminal: run.sh gives the iocsh a never-ending stdin
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        if not self._ready.wait(self.timeout) or self.process.poll() is not None:
            tail = "".join(list(self.output)[-30:])
            self.stop()
            raise IOCStartError(
                f"real IOC {self.prefix} (port {self.port}) not ready within "
                f"{self.timeout} s; output:\n{tail}"
            )
        self.startup_time = time.monotonic() - t0
        return self

    def _read_output(self) -> None:
        process, ready = self.process, self._ready
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if READY in line:
                ready.set()
        ready.set()  # process ended: wake a waiting start()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; removes its temp dir."""
        proc = self.process
        if proc is not None:
            terminate(proc, timeout)
            if self._reader is not None:
                self._reader.join(timeout)
                self._reader = None
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return None if proc is None else proc.returncode

    def __repr__(self) -> str:
        return f"RealIOC(prefix={self.prefix!r}, port={self.port}, running={self.running})"
