"""``adtoolkit demo``: take images with an area detector and show them.

This is the first command a new user runs, so it does the whole job a beamline
scientist does, end to end, and says where everything went:

1. start adtoolkit's simulated ADSimDetector IOC in a temporary directory on a
   free port (unless ``--prefix`` names an IOC that is already running);
2. build the detector with :func:`adtoolkit.devices.make_detector` (cam, HDF5
   file writer, image plugin);
3. run a bluesky ``count`` of N frames with a progress bar, saving the documents
   into a databroker catalog (``databroker.temp()`` unless ``--catalog``);
4. read the run back *through databroker* (so the file paths as the workstation
   sees them are exercised), save a PNG of the first frame and print the HDF5
   file's tree;
5. stop the IOC it started, also on Ctrl-C or SIGTERM.

``--json`` prints a machine-readable summary instead of prose, for scripts and CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: prefix of the simulated IOC the demo starts
DEMO_PREFIX = "demo:"
#: environment variables naming an external IOC (shared with the test suite)
ENV_PREFIX = "ADTOOLKIT_IOC_PREFIX"
ENV_WRITE_ROOT = "ADTOOLKIT_IOC_WRITE_ROOT"
ENV_READ_ROOT = "ADTOOLKIT_READ_ROOT"
#: seconds allowed for the IOC to start and for every PV to connect
CONNECT_TIMEOUT = 30.0


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what to check."""


@dataclass
class DemoSummary:
    """What ``--json`` prints: enough for a script to find and check everything."""

    uid: str = ""
    prefix: str = ""
    ioc: str = "simulated"  # or "external"
    ioc_pid: int | None = None
    ioc_port: int | None = None
    frames: int = 0
    catalog: str = "temp"
    write_root: str = ""
    read_root: str = ""
    output_dir: str = ""
    files: list[str] = field(default_factory=list)
    png: str = ""
    shapes: dict[str, list[int]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames",
        "--num",
        dest="frames",
        type=int,
        default=5,
        metavar="N",
        help="number of frames to count (default 5)",
    )
    parser.add_argument(
        "--prefix",
        default=None,
        help=f"PV prefix of a running IOC to use instead of starting one (default: ${ENV_PREFIX} "
        "if set, else start the simulated IOC)",
    )
    parser.add_argument(
        "--write-root",
        default=None,
        help=f"with --prefix: directory the IOC writes into, as the IOC sees it (default: ${ENV_WRITE_ROOT})",
    )
    parser.add_argument(
        "--read-root",
        default=None,
        help=f"with --prefix: the same directory as this workstation sees it (default: ${ENV_READ_ROOT}, "
        "else the write root)",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        metavar="NAME",
        help="databroker catalog to save the run in (default: a temporary one); 'tiled': an "
        "embedded tiled server (pip install 'adtoolkit[tiled]')",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory for the PNG and the simulated IOC's files (default: a new temporary directory)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable summary on stdout"
    )


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        print(f"adtoolkit demo: --frames must be at least 1, not {args.frames}", file=sys.stderr)
        return 2
    # SIGTERM (from a CI runner, `kill`, `timeout`) is handled like Ctrl-C: the run
    # is aborted cleanly and the IOC we started is stopped
    previous = signal.signal(signal.SIGTERM, _sigterm_as_sigint)
    try:
        summary = _demo(args)
    except KeyboardInterrupt:
        print("adtoolkit demo: interrupted; IOC stopped", file=sys.stderr)
        return 130
    except DemoError as exc:
        print(f"adtoolkit demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps(asdict(summary), indent=2))
    return 0


def _sigterm_as_sigint(signum: int, frame: Any) -> None:
    # during a run the RunEngine's own SIGINT handler pauses it at the next
    # checkpoint; outside a run Python's default handler raises KeyboardInterrupt
    os.kill(os.getpid(), signal.SIGINT)


def _say(args: argparse.Namespace, text: str = "") -> None:
    """Prose for people: stdout normally, stderr with --json (stdout is the JSON)."""
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _demo(args: argparse.Namespace) -> DemoSummary:
    t_start = time.monotonic()
    summary = DemoSummary(frames=args.frames, catalog=args.catalog or "temp")
    output = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="adtoolkit-demo-"))
    output.mkdir(parents=True, exist_ok=True)
    summary.output_dir = str(output)

    prefix = args.prefix or os.environ.get(ENV_PREFIX)
    write_root = args.write_root or os.environ.get(ENV_WRITE_ROOT)
    if prefix and not write_root:
        raise DemoError(
            f"--prefix {prefix} names an external IOC: also give --write-root "
            f"(or ${ENV_WRITE_ROOT}), a directory the IOC can write into"
        )
    # a wrong --catalog is found before any IOC is started
    catalog = _open_catalog(args.catalog)
    summary.timings["catalog"] = round(time.monotonic() - t_start, 3)

    t_ioc = time.monotonic()
    with ExitStack() as stack:
        if prefix:
            read_root = args.read_root or os.environ.get(ENV_READ_ROOT) or write_root
            summary.ioc = "external"
            _say(args, f"Using the IOC with prefix {prefix}")
        else:
            from adtoolkit.ioc.launcher import SimulatedIOC

            write_root = read_root = str(output / "data")
            Path(write_root).mkdir(exist_ok=True)
            prefix = DEMO_PREFIX
            _say(args, "Starting adtoolkit's simulated ADSimDetector IOC ...")
            ioc = stack.enter_context(SimulatedIOC(prefix=prefix, write_root=Path(write_root)))
            # the CA client must find this IOC: set before pyepics makes its context
            os.environ.update(ioc.env)
            summary.ioc_pid = ioc.process.pid
            summary.ioc_port = ioc.port
            _say(args, f"  prefix {prefix}  port {ioc.port}  pid {summary.ioc_pid}")
        summary.prefix = prefix
        summary.write_root, summary.read_root = str(write_root), str(read_root)
        summary.timings["ioc_start"] = round(time.monotonic() - t_ioc, 3)

        _acquire(args, summary, stack, catalog)
    summary.timings["total"] = round(time.monotonic() - t_start, 3)
    _say(args)
    _say(args, f"Run {summary.uid}: {summary.frames} frames, shapes {summary.shapes}")
    _say(args, f"First frame as PNG: {summary.png}")
    for name in summary.files:
        _say(args, f"HDF5 file:          {name}")
    return summary


#: ``--catalog tiled``: an embedded tiled server instead of databroker
TILED = "tiled"


def _open_catalog(name: str | None) -> Any:
    """The databroker (v2) catalog to save into: a configured one, or a temporary one.

    ``tiled``: the run goes to an embedded tiled server started once the IOC's
    read root is known (``adtoolkit.tiledcatalog.EmbeddedTiled``).
    """
    if name == TILED:
        try:
            import bluesky_tiled_plugins  # noqa: F401
            import tiled.server  # noqa: F401
        except ImportError as exc:
            raise DemoError(
                f"--catalog tiled needs tiled and bluesky-tiled-plugins: "
                f"pip install 'adtoolkit[tiled]' ({exc})"
            ) from None
        return TILED
    import databroker

    if not name:
        return databroker.temp().v2  # temp() gives the v1 Broker
    try:
        return databroker.catalog[name]
    except KeyError:
        known = ", ".join(sorted(databroker.catalog)) or "none configured"
        raise DemoError(f"no databroker catalog named {name!r} (known: {known})") from None


def _acquire(
    args: argparse.Namespace, summary: DemoSummary, stack: ExitStack, catalog: Any
) -> None:
    """Everything that needs ophyd / bluesky / databroker (imported only here)."""
    # databroker 1.x warns about its own internals (xarray dims, Broker.insert) on
    # every run: nothing a demo user can act on
    for category in (FutureWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"databroker(\.|$)")
    import numpy as np
    from bluesky import RunEngine
    from bluesky import plans as bp
    from bluesky.utils import RunEngineInterrupted

    from adtoolkit.devices import FilePathError, PortError, StagingError, make_detector

    t0 = time.monotonic()
    try:  # make_detector connects every PV and checks the plugin wiring
        det = make_detector(
            summary.prefix,
            name="det",
            plugins=("hdf1", "image1"),
            write_path=summary.write_root,
            read_path=summary.read_root,
            connection_timeout=CONNECT_TIMEOUT,
        )
    except (TimeoutError, ValueError, PortError) as exc:
        raise DemoError(str(exc)) from exc
    # close the CA channels before the IOC stops (runs first: the stack is LIFO),
    # so the client does not report a lost virtual circuit
    stack.callback(det.destroy)
    summary.timings["connect"] = round(time.monotonic() - t0, 3)

    logging.getLogger("bluesky").addHandler(logging.NullHandler())  # we report failures
    RE = RunEngine({})  # Ctrl-C pauses the run; it is aborted below
    if catalog == TILED:
        from adtoolkit.tiledcatalog import EmbeddedTiled

        t0 = time.monotonic()
        _say(args, "Starting an embedded tiled server ...")
        tiled = EmbeddedTiled([summary.read_root], directory=Path(summary.output_dir) / "tiled")
        stack.callback(tiled.close)
        summary.catalog = f"tiled {tiled.name}"
        summary.timings["tiled_start"] = round(time.monotonic() - t0, 3)
        _say(args, f"  {tiled.name}, readable storage {summary.read_root}")
        RE.subscribe(tiled.writer)
        catalog = tiled.client
    else:
        RE.subscribe(catalog.v1.insert)
    bar = _progress_bar(args, summary.frames)
    stack.callback(bar.close)
    RE.subscribe(lambda name, doc: bar.update(1), "event")

    t0 = time.monotonic()
    try:
        (uid,) = RE(bp.count([det], num=summary.frames))
    except RunEngineInterrupted:  # Ctrl-C or SIGTERM: close the run, unstage
        bar.close()
        RE.abort("interrupted by the user")
        raise KeyboardInterrupt from None
    except (FilePathError, StagingError, TimeoutError) as exc:
        raise DemoError(str(exc)) from exc
    bar.close()
    summary.uid = uid
    summary.timings["count"] = round(time.monotonic() - t0, 3)

    t0 = time.monotonic()
    run = catalog[uid]
    data = _read_primary(run)
    summary.files = _resource_files(run)
    images = {}
    for key, array in data.items():
        summary.shapes[key] = list(array.shape)
        summary.dtypes[key] = str(array.dtype)
        if array.ndim >= 3:
            images[key] = array
    summary.timings["read_back"] = round(time.monotonic() - t0, 3)
    if not images:
        raise DemoError(f"run {uid} has no image data (fields: {', '.join(data)})")

    t0 = time.monotonic()
    key, stack_of_frames = next(iter(images.items()))
    first = np.asarray(stack_of_frames)[0]
    while first.ndim > 2 and first.shape[-1] != 3:  # (frames per point, Y, X) -> (Y, X)
        first = first[0]
    summary.png = str(Path(summary.output_dir) / "first_frame.png")
    _save_png(first, summary.png, title=f"{key}: frame 1 of {summary.frames}, run {uid[:8]}")
    summary.timings["png"] = round(time.monotonic() - t0, 3)

    from adtoolkit.readers.tree import format_tree

    for name in summary.files:
        _say(args)
        _say(args, format_tree(name).rstrip("\n"))


def _progress_bar(args: argparse.Namespace, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="frames", unit="frame", file=sys.stderr, leave=True)


def _read_primary(run: Any) -> dict[str, Any]:
    """The primary stream's fields, from databroker (xarray) or through tiled (numpy)."""
    if not type(run).__module__.startswith("bluesky_tiled_plugins"):
        data = run.primary.read()
        return {key: data[key] for key in data.data_vars}
    stream = run["primary"]
    skip = {"time", "seq_num"}
    return {
        key: stream[key].read() for key in stream if key not in skip and not key.startswith("ts_")
    }


def _resource_files(run: Any) -> list[str]:
    """Files of the run's resources, as this workstation sees them."""
    from adtoolkit.tiledcatalog import document_path

    files = []
    if type(run).__module__.startswith("bluesky_tiled_plugins"):
        # the files the server reads: the assets of the primary stream's data sources
        stream = run.include_data_sources()["primary"]
        docs = [
            ("stream_resource", {"uri": asset.data_uri})
            for key in stream
            for source in stream[key].data_sources() or []
            for asset in source.assets
        ]
    else:
        docs = run.documents(fill="no")
    for name, doc in docs:
        path = document_path(name, doc)
        if path is not None and str(Path(path)) not in files:
            files.append(str(Path(path)))
    return files


def _save_png(frame: Any, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed, also on a headless CI runner
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.subplots()
    image = axes.imshow(frame, origin="upper", interpolation="nearest")
    figure.colorbar(image, ax=axes, label="counts")
    axes.set_title(title)
    axes.set_xlabel("X (pixel)")
    axes.set_ylabel("Y (pixel)")
    figure.savefig(path)
