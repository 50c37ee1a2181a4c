"""``adtoolkit ioc``: run the simulated ADSimDetector IOC in the foreground.

Stops cleanly on Ctrl-C or SIGTERM.  Binds to loopback unless ``--interfaces``
(or EPICS_CAS_INTF_ADDR_LIST) says otherwise; the UDP/TCP port comes from
``--port``, EPICS_CAS_SERVER_PORT or EPICS_CA_SERVER_PORT (default 5064), so
several IOCs can run side by side.  Once every PV is served it prints one line,
``adtoolkit-ioc ready prefix=ad: port=5064``, which launchers wait for.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

READY = "adtoolkit-ioc ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix", default=None, help="PV prefix (default: the instance's, ad:)")
    parser.add_argument(
        "--instance",
        default=None,
        metavar="PATH",
        help="instance definition (TOML file or directory with instance.toml, e.g. iocs/adsim)",
    )
    parser.add_argument(
        "--write-root",
        default=None,
        metavar="DIR",
        help="file plugins may only write below DIR (default: anywhere)",
    )
    parser.add_argument(
        "--interfaces",
        nargs="+",
        default=None,
        metavar="ADDR",
        help="interfaces to serve on (default: EPICS_CAS_INTF_ADDR_LIST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="CA server port (default: EPICS_CAS_SERVER_PORT / EPICS_CA_SERVER_PORT / 5064)",
    )
    parser.add_argument(
        "--adcore",
        default=None,
        metavar="VERSION",
        help="serve the records of this ADCore release (default 3.14; an older one such as 3.4 "
        "adds the legacy records older ophyd/apstools classes name)",
    )
    parser.add_argument("--list-pvs", action="store_true", help="print every PV name and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log caproto server activity")
    parser.add_argument(
        "--no-fast-exit",
        action="store_true",
        help=argparse.SUPPRESS,  # return from run() instead of ending the process (in-process use)
    )


def _server_port(args: argparse.Namespace) -> int:
    if args.port is not None:
        return args.port
    for name in ("EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                raise SystemExit(f"adtoolkit ioc: {name}={value!r} is not a port number") from None
    return 5064


def _interfaces(args: argparse.Namespace) -> list[str]:
    if args.interfaces:
        return list(args.interfaces)
    env = os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "").split()
    return env or ["127.0.0.1"]


def watch_parent(fd: int | None, parent_pid: int | None) -> None:
    """End this IOC (SIGTERM to itself: a clean stop) when the launching *process* dies,
    so a crashed test run never leaves IOCs acquiring on a shared machine.

    ``fd`` is the read end of a pipe whose write end only the launcher holds: the
    kernel closes it when the launcher process ends, however it ends, and the
    read returns EOF.  Unlike PR_SET_PDEATHSIG, which fires when the *thread*
    that started the IOC ends, this is tied to the process.  Without a pipe
    (another launcher), ``parent_pid`` is watched through os.getppid().
    """
    import signal
    import threading
    import time

    def gone() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    def read_pipe() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        gone()

    def poll_ppid() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        gone()

    if fd is not None:
        target = read_pipe
    elif parent_pid is not None:
        if os.getppid() != parent_pid:  # the launcher died before we got here
            raise SystemExit(f"adtoolkit ioc: launcher process {parent_pid} is gone")
        target = poll_ppid
    else:
        return
    threading.Thread(target=target, name="watch-parent", daemon=True).start()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def run(args: argparse.Namespace) -> int:
    import gc

    # Startup allocates ~100k long-lived objects (modules, 2870 channels): the
    # cyclic collector would rescan them all again and again while they are
    # built.  Collect nothing until the IOC is built, then freeze it all into
    # the permanent generation so later collections never walk it.
    gc.disable()
    try:
        return _run(args)
    finally:
        gc.enable()


class BeaconFilter:
    """Keep one line of caproto's failed-beacon reports, drop the rest.

    Beacons are best-effort: rsrv sends them and says nothing when nobody receives
    them.  With no caRepeater on the beacon port, loopback answers each send with
    "connection refused", and caproto logs every one with a traceback (each of the
    first seconds, then every 15 s), which buries the IOC's own messages.
    """

    def __init__(self) -> None:
        self.reported = False

    def filter(self, record: Any) -> bool:
        if not str(record.msg).startswith("Failed to send beacon"):
            return True
        if self.reported:
            return False
        self.reported = True
        address = record.args[0] if record.args else "?"
        record.msg = "beacons to %s are not received (no caRepeater there?); not reported again"
        record.args = (address,)
        record.exc_info = record.exc_text = None
        return True


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import gc
    import logging
    import signal

    from adtoolkit.ioc.server import SimDetectorIOC, load_instance

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("caproto").setLevel(logging.ERROR)
    logging.getLogger("caproto.ctx").addFilter(BeaconFilter())
    try:
        instance = load_instance(args.instance)
    except (OSError, ValueError) as exc:
        print(f"adtoolkit ioc: cannot load instance {args.instance}: {exc}", file=sys.stderr)
        return 2
    if args.write_root is not None and not os.path.isdir(args.write_root):
        print(f"adtoolkit ioc: --write-root {args.write_root}: no such directory", file=sys.stderr)
        return 2
    try:
        ioc = SimDetectorIOC(
            prefix=args.prefix, instance=instance, write_root=args.write_root, adcore=args.adcore
        )
    except ValueError as exc:
        print(f"adtoolkit ioc: {exc}", file=sys.stderr)
        return 2
    if args.list_pvs:
        for name in ioc.pvdb:
            print(name)
        return 0
    gc.freeze()
    gc.enable()

    watch_parent(_env_int("ADTOOLKIT_IOC_PARENT_FD"), _env_int("ADTOOLKIT_IOC_PARENT_PID"))
    port = _server_port(args)
    # caproto reads the server port from EPICS_CA_SERVER_PORT
    os.environ["EPICS_CA_SERVER_PORT"] = str(port)
    os.environ.setdefault("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
    os.environ.setdefault("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
    interfaces = _interfaces(args)

    def ready(udp_port: int) -> None:
        print(f"{READY} prefix={ioc.prefix} port={udp_port} pvs={len(ioc.pvdb)}", flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await ioc.run(interfaces, ready)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"adtoolkit ioc: cannot serve on {interfaces} port {port}: {exc}", file=sys.stderr)
        return 1
    if not args.no_fast_exit:
        # Everything is stopped and every file closed; tearing down the
        # interpreter (thousands of channel objects) would take ~1.5 s more.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(0)
    return 0
