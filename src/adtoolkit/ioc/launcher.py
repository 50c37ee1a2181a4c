"""Start the simulated IOC as a subprocess on a free port (for tests and notebooks).

    with SimulatedIOC(prefix="adt:", write_root=tmpdir) as ioc:
        os.environ.update(ioc.env)      # before pyepics/ophyd create their CA context
        ...

The IOC runs as ``python -m adtoolkit ioc`` with this checkout's ``adtoolkit``
on its path, bound to 127.0.0.1 on its own UDP/TCP port; :attr:`SimulatedIOC.env`
holds the client variables that reach it.  Nothing here imports pyepics or ophyd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import adtoolkit

READY = "adtoolkit-ioc ready"


def free_port(exclude: Iterable[int] = ()) -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    exclude = set(exclude)
    for _ in range(200):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        if port in exclude:
            continue
        try:
            with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found on 127.0.0.1")


def reserve_ports(n: int) -> list[int]:
    """``n`` distinct free ports (a pool for IOCs started later)."""
    ports: list[int] = []
    for _ in range(n):
        ports.append(free_port(exclude=ports))
    return ports


def client_env(ports: Sequence[int]) -> dict[str, str]:
    """EPICS_CA_* client variables reaching IOCs on these loopback ports."""
    return {
        "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{p}" for p in ports),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024),
    }


class IOCStartError(RuntimeError):
    """The IOC subprocess exited or did not become ready in time."""


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class IOCProcess:
    """What every IOC subprocess handle shares: ``with`` starts and stops it."""

    process: subprocess.Popen | None = None

    def start(self) -> IOCProcess:
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> int | None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimulatedIOC(IOCProcess):
    """The simulated ADSimDetector IOC in a subprocess.

    ``port`` defaults to a free one.  ``extra_args`` go to ``adtoolkit ioc``
    (e.g. ``["--instance", "iocs/adsim"]``).
    """

    def __init__(
        self,
        prefix: str = "adt:",
        write_root: str | os.PathLike | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.prefix = prefix
        self._own_root: tempfile.TemporaryDirectory | None = None
        if write_root is None:
            self._own_root = tempfile.TemporaryDirectory(prefix="adtoolkit-ioc-")
            write_root = self._own_root.name
        self.write_root = Path(write_root)
        self.read_root = self.write_root
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self._extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._parent_pipe: int | None = None  # write end: closed when this process dies
        self.ready_line = ""
        self.startup_time: float | None = None

    @property
    def env(self) -> dict[str, str]:
        """Client CA variables reaching this IOC."""
        return client_env([self.port])

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "adtoolkit",
            "ioc",
            "--prefix",
            self.prefix,
            "--write-root",
            str(self.write_root),
            "--port",
            str(self.port),
            "--interfaces",
            "127.0.0.1",
            *self.extra_args,
        ]

    def start(self) -> SimulatedIOC:
        if self.process is not None:
            return self
        self.write_root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        src = str(Path(adtoolkit.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
        env.update(
            {
                "EPICS_CA_SERVER_PORT": str(self.port),
                "EPICS_CAS_SERVER_PORT": str(self.port),
                "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
                "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        # The IOC ends itself when this *process* dies (command.watch_parent): it
        # reads a pipe whose write end only this process holds, whichever thread
        # started it.
        read_end, self._parent_pipe = os.pipe()
        env["ADTOOLKIT_IOC_PARENT_FD"] = str(read_end)
        env["ADTOOLKIT_IOC_PARENT_PID"] = str(os.getpid())
        env.update(self._extra_env)
        # a restart waits for the *new* process's ready line
        self._ready = threading.Event()
        self.ready_line = ""
        t0 = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.command(),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                pass_fds=(read_end,),
            )
        except BaseException:
            self._close_pipe()
            raise
        finally:
            os.close(read_end)
        self._reader = threading.Thread(
            target=self._read_output, args=(self.process, self._ready), daemon=True
        )
        self._reader.start()
        if (
            not self._ready.wait(self.timeout)
            or self.process.poll() is not None
            and not self.ready_line
        ):
            self.stop()
            tail = "".join(self.output[-30:])
            raise IOCStartError(
                f"simulated IOC {self.prefix} (port {self.port}) not ready within "
                f"{self.timeout} s; output:\n{tail}"
            )
        self.startup_time = time.monotonic() - t0
        return self

    def _read_output(self, process: subprocess.Popen, ready: threading.Event) -> None:
        """Collect one process's output; ``ready`` is that run's own flag."""
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if line.startswith(READY) and not ready.is_set():
                self.ready_line = line.strip()
                ready.set()
        ready.set()  # process ended: wake a waiting start()

    def _close_pipe(self) -> None:
        if self._parent_pipe is not None:
            os.close(self._parent_pipe)
            self._parent_pipe = None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        proc = self.process
        if proc is None:
            return None
        terminate(proc, timeout)
        self._close_pipe()
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        self.process = None
        if self._own_root is not None:
            self._own_root.cleanup()
            self._own_root = None
        return proc.returncode

    def __repr__(self) -> str:
        return f"SimulatedIOC(prefix={self.prefix!r}, port={self.port}, running={self.running})"
