"""The two-hosts harness itself (tests/netns.py): address, isolation, clean-up, paths.

The two-hosts acquisition test trusts this harness to give the IOC a separate network
and a separate view of the disk; these tests show that it does, and that it leaves
nothing behind, also when the test body fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from netns import (
    NetNamespace,
    SplitDirectory,
    list_namespaces,
    netns_unavailable_reason,
    remove_stale_namespaces,
    require_netns,
)

ECHO_SERVER = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
print("ready", flush=True)
conn, peer = srv.accept()
conn.sendall(b"echo from %s to %s: " % (sys.argv[1].encode(), peer[0].encode()) + conn.recv(100))
conn.close()
"""


@pytest.fixture
def ns():
    require_netns()
    with NetNamespace() as namespace:
        yield namespace


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout


def test_namespace_has_its_own_address(ns):
    assert ns.address != ns.host_address
    assert ns.address.startswith("10.213.") and ns.host_address.startswith("10.213.")
    inside = ns.ip("-o", "-4", "addr", "show")
    assert f"inet {ns.address}/30" in inside
    assert ns.host_address not in inside
    outside = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    assert f"inet {ns.host_address}/30" in outside
    assert f"inet {ns.address}/" not in outside


def test_tcp_echo_across_the_veth(ns):
    port = 7007  # the namespace has its own port space: nothing else listens there
    server = ns.popen(
        [sys.executable, "-c", ECHO_SERVER, ns.address, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout.readline().strip() == "ready"
    with socket.create_connection((ns.address, port), timeout=10) as conn:
        conn.settimeout(10)
        conn.sendall(b"ping")
        reply = conn.recv(200)
    assert reply == f"echo from {ns.address} to {ns.host_address}: ping".encode()
    assert server.wait(timeout=10) == 0


def test_host_loopback_is_invisible_inside(ns):
    """A service on the host's 127.0.0.1 cannot be reached from the namespace."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        probe = (
            "import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            "except OSError as e:\n"
            "    print(type(e).__name__); sys.exit(0)\n"
            "print('connected'); sys.exit(1)\n"
        )
        res = ns.run([sys.executable, "-c", probe])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "ConnectionRefusedError"


def test_everything_is_removed_even_when_the_body_fails():
    require_netns()
    with pytest.raises(ZeroDivisionError):
        with NetNamespace() as namespace:
            sleeper = namespace.popen(["sleep", "300"])
            orphan = namespace.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"])
            orphan_pid = int(orphan.stdout)
            assert namespace.exists
            assert namespace.host_ifname in _links()
            1 / 0  # noqa: B018
    assert namespace.name not in list_namespaces()
    assert namespace.host_ifname not in _links()
    assert sleeper.poll() is not None
    assert not _running(orphan_pid)


def test_parallel_namespaces_get_distinct_links():
    require_netns()
    with NetNamespace() as a, NetNamespace() as b:
        assert a.name != b.name
        assert not a.network.overlaps(b.network)
    assert a.name not in list_namespaces() and b.name not in list_namespaces()


def test_leftovers_of_a_dead_run_are_removed():
    require_netns()
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    stale = f"adtk-{dead.pid}-dead01"
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=20)
    try:
        assert stale in remove_stale_namespaces()
        assert stale not in list_namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, timeout=20)


def test_unavailable_reason_is_none_when_root_and_ip():
    """Here (root, iproute2) namespaces work; elsewhere the reason names what is missing."""
    reason = netns_unavailable_reason()
    if os.geteuid() != 0:
        assert "root" in reason
    else:
        assert reason is None


def test_split_directory_ioc_path_only_exists_for_the_ioc(ns, tmp_path):
    with SplitDirectory(tmp_path) as split:
        ioc_file = split.ioc_path / "scan" / "f_000.h5"
        res = ns.run(
            [
                "sh",
                "-c",
                f"mkdir -p {ioc_file.parent} && echo frames > {ioc_file} && ls {split.ioc_path}",
            ],
            mounts=split.ioc_mounts,
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["scan"]
        # The workstation sees the IOC's file under its own path ...
        assert split.to_read_path(ioc_file) == split.read_path / "scan" / "f_000.h5"
        assert split.to_read_path(ioc_file).read_text() == "frames\n"
        # ... and the IOC's path shows nothing outside the IOC.
        assert list(split.ioc_path.iterdir()) == []
        assert not split.read_path.is_symlink()
    # The workstation mount is gone again; the storage keeps the data.
    assert not os.path.ismount(split.read_path)
    assert (split.storage / "scan" / "f_000.h5").read_text() == "frames\n"


def test_split_directory_symlink_mode(tmp_path):
    with SplitDirectory(tmp_path, mode="symlink") as split:
        (split.storage / "a.h5").write_bytes(b"x")
        assert split.read_path.is_symlink()
        assert split.to_read_path(split.ioc_path / "a.h5").read_bytes() == b"x"
        with pytest.raises(ValueError, match="outside the IOC directory"):
            split.to_read_path(tmp_path / "elsewhere" / "a.h5")
    assert not split.read_path.exists()


def test_split_directory_rejects_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="'nfs'"):
        SplitDirectory(tmp_path, mode="nfs")
