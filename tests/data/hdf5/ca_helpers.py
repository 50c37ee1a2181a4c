"""Start tests/data/hdf5/attr_ioc.py on a free loopback port and give a CA client for it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).parent


def free_port() -> int:
    """A loopback port free for both TCP and UDP (CA uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair found")


@contextlib.contextmanager
def attr_ioc_context(timeout: float = 30.0) -> Iterator[object]:
    """Run the attribute IOC; yield a caproto threading Context that reaches it."""
    from caproto.threading.client import Context, SharedBroadcaster

    port = free_port()
    env = dict(os.environ)
    env.update(
        EPICS_CA_SERVER_PORT=str(port),
        EPICS_CAS_SERVER_PORT=str(port),
        EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
        EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
        EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
    )
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "attr_ioc.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    saved = {k: os.environ.get(k) for k in ("EPICS_CA_ADDR_LIST", "EPICS_CA_AUTO_ADDR_LIST")}
    context = None
    try:
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # the server prints READY, or exits (EOF)
            if "READY" in line or not line:
                break
        if "READY" not in line:
            raise RuntimeError(f"attribute IOC did not start: {line!r}")
        os.environ["EPICS_CA_ADDR_LIST"] = f"127.0.0.1:{port}"
        os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
        context = Context(SharedBroadcaster())
        yield context
    finally:
        if context is not None:
            context.disconnect()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.kill()
        proc.wait(timeout=10)
