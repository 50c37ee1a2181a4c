"""Measure how the real ADCore IOC (../shared/real-adsim) judges attributes and layout files.

The validator claims to apply the IOC's rules; this module asks the IOC itself.
For an **attributes file** it puts the path to ``cam1:NDAttributesFile``, reads
``cam1:NDAttributesStatus``, acquires one frame with HDF1 (default layout,
Single mode) and lists the NDAttributes that reached the file.  For a **layout
file** it puts the path to ``HDF1:XMLFileName``, reads ``XMLValid_RBV`` and
``XMLErrorMsg_RBV``, acquires one frame and lists the HDF5 tree written (or
HDF1's ``WriteMessage`` when the file could not be written).

It talks to the IOC with the static ``caget``/``caput`` shipped in the tarball,
so it needs nothing but the tarball.  A file that makes the IOC die or stop
answering is recorded as ``{"crashed": true}`` and the IOC is started again.

    python3 tests/real_adsim_xml.py PORT          re-record tests/data/real_ioc_xml_verdicts.json
    python3 tests/real_adsim_xml.py PORT FILE...  print the measurements of some files
    python3 tests/real_adsim_xml.py --sim PORT    where adtoolkit's simulated IOC differs

PORT is a free loopback CA port; the IOC also takes PORT+2 and PORT+3 (pvAccess).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARBALL = REPO.parent / "shared" / "real-adsim" / "real-adsim-runtime.tar.gz"
REFERENCE = REPO.parent / "shared" / "reference" / "adcore"
VERDICTS = HERE / "data" / "real_ioc_xml_verdicts.json"
BROKEN = HERE / "data" / "xml_broken"
#: An attributes file that defines no NDAttribute: the partner of layouts without one.
NO_ATTRIBUTES = BROKEN / "attr_no_attributes.xml"
#: The prefix the ADCore example files name in their EPICS_PV sources.
PREFIX = "13SIM1:"
#: NDAttributes every frame carries whatever the attributes file says.
IOC_OWN_ATTRIBUTES = frozenset(
    {"NDArrayUniqueId", "NDArrayTimeStamp", "NDArrayEpicsTSSec", "NDArrayEpicsTSnSec"}
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def xml_files() -> list[Path]:
    """Every XML file the verdict table covers: tests/data, the ADCore reference, broken variants."""
    files = sorted((HERE / "data").rglob("*.xml"))
    if REFERENCE.is_dir():
        files += sorted(REFERENCE.glob("*.xml"))
    return files


def kind_of(path: Path) -> list[str]:
    """Which PVs a file is fed to: by its root element, or by its name for broken variants."""
    name = path.name
    if path.parent == BROKEN:
        return ["attributes"] if name.startswith("attr_") else ["layout"]
    text = path.read_text(errors="replace")
    if "<Attributes" in text:
        return ["attributes"]
    if "<hdf5_layout" in text:
        return ["layout"]
    return ["attributes", "layout"]


def key_of(path: Path) -> str:
    """The file's name in the table: relative to the repository, or ``reference/NAME``."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return f"reference/{path.name}"


class RealIOC:
    """One real simDetector IOC on a loopback port, with caget/caput from its tarball."""

    def __init__(self, root: Path, port: int, prefix: str = PREFIX):
        self.root = root
        self.port = port
        self.prefix = prefix
        self.bin = root / "real-adsim" / "base" / "bin" / "linux-x86_64"
        self.env = dict(
            os.environ,
            EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}",
            EPICS_CA_AUTO_ADDR_LIST="NO",
            EPICS_CA_MAX_ARRAY_BYTES="40000000",
        )
        self.proc: subprocess.Popen | None = None

    #: How long a CA failure may take to turn into the IOC's exit (a core dump is slow).
    death_wait = 30.0

    # -- life cycle
    def start(self, timeout: float = 60.0) -> None:
        log = open(self.root / "ioc.log", "wb")  # noqa: SIM115 (kept open for the IOC's life)
        self.proc = subprocess.Popen(
            [str(self.root / "real-adsim" / "run.sh"), self.prefix, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, RA_STDIN="pass"),
        )
        # NDArrayPool reuses NDArrays without clearing their attributes unless told to
        # (eraseNDAttributes=0 is ADCore's default): without this, the attributes of
        # every earlier file reach the HDF5 file too.  The pipe stays open: EOF ends the iocsh.
        self.proc.stdin.write(b"var eraseNDAttributes 1\n")
        self.proc.stdin.flush()
        self._wait_until_answering(timeout, "ioc.log")

    def _wait_until_answering(self, timeout: float, log: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the IOC exited at start, see {self.root / log}")
            with contextlib.suppress(RuntimeError):
                self.get("HDF1:XMLValid_RBV", timeout=1.0)
                return
        raise RuntimeError(f"the IOC did not answer within {timeout} s on port {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    # -- Channel Access
    def _run(self, args: list[str], timeout: float) -> str:
        try:
            out = subprocess.run(
                args, env=self.env, capture_output=True, text=True, timeout=timeout + 5
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{args[0]} timed out: {' '.join(args[1:])}") from exc
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {out.stdout.strip()} {out.stderr.strip()}")
        return out.stdout

    def get(self, pv: str, timeout: float = 5.0, string: bool = False) -> str:
        args = [str(self.bin / "caget"), "-w", str(timeout), "-t"]
        if string:
            args.append("-S")
        return self._run(args + [self.prefix + pv], timeout).strip()

    def put(self, pv: str, value: str | int | float, timeout: float = 5.0, **kw) -> None:
        args = [str(self.bin / "caput"), "-w", str(timeout), "-t"]
        if kw.get("string"):
            args.append("-S")
        if kw.get("callback"):
            args.append("-c")
        self._run(args + [self.prefix + pv, str(value)], timeout)

    def pv_exists(self, name: str) -> bool:
        """Whether the IOC serves this PV (full name), i.e. an EPICS_PV attribute can connect."""
        try:
            self._run([str(self.bin / "caget"), "-w", "0.5", "-t", name], 0.5)
        except RuntimeError:
            return False
        return True


class SimIOC(RealIOC):
    """adtoolkit's simulated IOC, measured the same way (for a list of differences only)."""

    death_wait = 2.0

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.root / "sim.log", "wb")  # noqa: SIM115 (kept open for the IOC's life)
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adtoolkit",
                "ioc",
                "--prefix",
                self.prefix,
                "--port",
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        self._wait_until_answering(timeout, "sim.log")


@contextlib.contextmanager
def real_ioc(port: int, kind: type[RealIOC] = RealIOC) -> Iterator[RealIOC]:
    """Unpack the tarball into a temporary directory and run the IOC there until the end."""
    root = Path(tempfile.mkdtemp(prefix="real-adsim-xml-"))
    try:
        with tarfile.open(TARBALL) as tar:
            tar.extractall(root, filter="tar")
        ioc = kind(root, port)
        ioc.start()
        try:
            prepare(ioc)
            yield ioc
        finally:
            ioc.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def prepare(ioc: RealIOC) -> None:
    """Small frames, one frame per acquisition, HDF1 writing one Single-mode file per frame."""
    for pv, value in [
        ("cam1:SizeX", 16),
        ("cam1:SizeY", 8),
        ("cam1:ImageMode", "Single"),
        ("cam1:AcquireTime", 0.001),
        ("cam1:AcquirePeriod", 0),
        ("HDF1:EnableCallbacks", "Enable"),
        ("HDF1:BlockingCallbacks", "Yes"),
        ("HDF1:FileWriteMode", "Single"),
        ("HDF1:AutoSave", "Yes"),
        ("HDF1:AutoIncrement", "Yes"),
        ("HDF1:StoreAttr", "Yes"),
        ("HDF1:StorePerform", "Yes"),
        ("HDF1:FileTemplate", "%s%s_%d.h5"),
        ("HDF1:FileName", "x"),
    ]:
        ioc.put(pv, value, string=isinstance(value, str) and pv.endswith(("Template", "Name")))


def _own(attribute: str) -> bool:
    """HDF5 attributes NDFileHDF5 adds to every NDAttribute/detector dataset (not in layouts)."""
    return attribute.startswith(("NDAttr", "NDArray"))


def _h5_tree(path: Path) -> dict:
    """What a written file holds: every link (hard links under each name) and HDF5
    attribute as ``path@name``, the datasets written empty, the NDAttributes
    group's names and those of them that carry no value (float32 NaN placeholders)."""
    import h5py
    import numpy as np

    links: list[str] = []
    with h5py.File(path, "r") as f:
        f.visit_links(links.append)
        tree = ["/" + p for p in links] + [f"/@{a}" for a in f.attrs if not _own(a)]
        empty = []
        for p in links:
            obj = f.get(p)
            if obj is None:  # a link to nothing
                continue
            tree += [f"/{p}@{a}" for a in obj.attrs if not _own(a)]
            if isinstance(obj, h5py.Dataset) and (
                obj.size == 0 or (obj.dtype.kind == "S" and not any(np.ravel(obj[()])))
            ):
                empty.append("/" + p)
        group = f.get("/entry/instrument/NDAttributes")
        names, no_value = [], []
        if isinstance(group, h5py.Group):
            for name, obj in group.items():
                names.append(name)
                if not isinstance(obj, h5py.Dataset):  # "a/b" nests a group (sim IOC)
                    continue
                if obj.dtype == np.float32 and np.all(np.isnan(obj[()])):
                    no_value.append(name)
    return {
        "tree": sorted(tree),
        "empty": sorted(empty),
        "ndattributes": sorted(names),
        "no_value": sorted(no_value),
    }


def acquire(ioc: RealIOC, outdir: Path, timeout: float = 20.0) -> dict:
    """One frame through HDF1; the file written (tree, NDAttributes) or HDF1's message.

    HDF1 has BlockingCallbacks=Yes, so it has written and closed its file when the
    put-with-callback to ``cam1:Acquire`` returns.
    """
    # a directory of its own: a file an earlier case left behind cannot be taken for this one
    outdir.mkdir(parents=True, exist_ok=True)
    outdir = Path(tempfile.mkdtemp(dir=outdir))
    ioc.put("HDF1:FilePath", str(outdir) + "/", string=True)
    number = int(ioc.get("HDF1:FileNumber_RBV"))
    before = int(ioc.get("HDF1:ArrayCounter_RBV"))
    ioc.put("cam1:Acquire", 1, callback=True, timeout=timeout)
    expected = outdir / f"x_{number}.h5"
    # the real IOC is done here; an IOC that calls plugins asynchronously gets a moment
    deadline = time.monotonic() + 5.0
    while int(ioc.get("HDF1:ArrayCounter_RBV")) <= before:
        if time.monotonic() > deadline:
            raise RuntimeError("HDF1 did not receive the frame")
        time.sleep(0.05)
    while not expected.exists() and int(ioc.get("HDF1:FileNumber_RBV")) == number:
        if time.monotonic() > deadline or ioc.get("HDF1:WriteStatus") != "Write OK":
            break
        time.sleep(0.05)
    # the file name and number in the message differ from run to run
    message = ioc.get("HDF1:WriteMessage", string=True).replace(str(outdir), "DIR")
    message = re.sub(r"x_\d+\.h5", "x_N.h5", message)
    status = ioc.get("HDF1:WriteStatus")
    if not expected.exists():
        return {"written": False, "write_status": status, "write_message": message}
    try:
        content = _h5_tree(expected)
    except OSError:  # the IOC left it open (locked) or it is not an HDF5 file
        return {
            "written": False,
            "write_status": status,
            "write_message": message,
            "left_open": True,
        }
    finally:
        with contextlib.suppress(OSError):
            expected.unlink()
    return {"written": True, **content}


def measure_attributes(ioc: RealIOC, path: Path, outdir: Path) -> dict:
    ioc.put("HDF1:XMLFileName", "", string=True)  # default layout
    ioc.put("cam1:NDAttributesFile", str(path), string=True)
    status = ioc.get("cam1:NDAttributesStatus")
    result = {"status": status, **acquire(ioc, outdir)}
    if result.get("written"):
        result["ndattributes"] = [
            n for n in result.pop("ndattributes") if n not in IOC_OWN_ATTRIBUTES
        ]
        result.pop("tree")
        result.pop("empty")
    ioc.put("cam1:NDAttributesFile", "", string=True)
    return result


def measure_layout(ioc: RealIOC, path: Path, outdir: Path, attributes: Path | None) -> dict:
    ioc.put("cam1:NDAttributesFile", str(attributes) if attributes else "", string=True)
    ioc.put("HDF1:XMLFileName", str(path), string=True)
    result = {
        "xml_valid": ioc.get("HDF1:XMLValid_RBV"),
        "xml_error": ioc.get("HDF1:XMLErrorMsg_RBV", string=True),
        **acquire(ioc, outdir),
    }
    result.pop("ndattributes", None)
    result.pop("no_value", None)
    ioc.put("HDF1:XMLFileName", "", string=True)
    ioc.put("cam1:NDAttributesFile", "", string=True)
    return result


def paired_attributes(path: Path) -> Path | None:
    """The attributes file a layout is meant to be used with (same directory), if any."""
    name = path.name
    candidates = []
    if "_layout" in name:
        candidates.append(name.replace("_layout", "_attributes"))
    for candidate in candidates:
        if (path.parent / candidate).is_file() and candidate != name:
            return path.parent / candidate
    # otherwise no NDAttributes but the IOC's own, said explicitly to both sides
    return NO_ATTRIBUTES


def cases(files: list[Path] | None = None) -> list[dict]:
    """(file, kind, attributes file) for every measurement, in a stable order."""
    out = []
    for path in files if files is not None else xml_files():
        for kind in kind_of(path):
            pair = paired_attributes(path) if kind == "layout" else None
            out.append(
                {
                    "file": key_of(path),
                    "path": path,
                    "kind": kind,
                    "attributes": key_of(pair) if pair else None,
                    "attributes_path": pair,
                }
            )
    return out


def _root(path: Path) -> ElementTree.Element | None:
    try:
        return ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return None


def declared_attributes(path: Path) -> list[str]:
    """The NDAttribute names an attributes file declares (every child's name=, duplicates kept)."""
    root = _root(path)
    if root is None:
        return []
    return [child.get("name") for child in root if child.get("name") is not None]


def _layout_items(path: Path) -> list[tuple[str, ElementTree.Element]]:
    """(``/a/b`` or ``/a/b@attr``, element) for every named thing a layout declares."""
    root = _root(path)
    out: list[tuple[str, ElementTree.Element]] = []

    def walk(node: ElementTree.Element, where: str) -> None:
        for child in node:
            name = child.get("name")
            if name is None:
                continue
            if child.tag == "attribute":
                out.append((f"{where or '/'}@{name}", child))
            elif child.tag in ("group", "dataset", "hardlink"):
                out.append((f"{where}/{name}", child))
                walk(child, f"{where}/{name}")

    if root is not None:
        walk(root, "")
    return out


def declared_paths(path: Path) -> list[str]:
    """Every HDF5 object and attribute a layout asks for, duplicates kept (``path@attr``)."""
    return [where for where, _ in _layout_items(path)]


def declared_constants(path: Path) -> list[str]:
    """Datasets a layout gives a non-empty constant value."""
    return [
        where
        for where, node in _layout_items(path)
        if node.tag == "dataset" and node.get("source") == "constant" and node.get("value")
    ]


def ioc_verdict(row: dict, path: Path) -> tuple[str, str]:
    """("valid" | "invalid", why) from a measurement.

    Invalid means what the validator's errors mean: the IOC refuses the file (bad
    status, XMLValid No, no HDF5 file, a crash), or it accepts it but silently leaves
    out something the file asks for (an Attribute or a layout object missing from
    the HDF5 file, or declared twice where the file can hold one).
    """
    ioc = row["ioc"]
    if ioc.get("crashed"):
        return "invalid", "the IOC crashed"
    if row["kind"] == "attributes":
        if ioc["status"] != "Attributes file OK":
            return "invalid", ioc["status"]
        names = declared_attributes(path)
        if not ioc.get("written"):
            return "invalid", "no HDF5 file"
        lost = sorted({n for n in names if n not in ioc["ndattributes"]})
        dup = sorted({n for n in names if names.count(n) > 1})
        if lost or dup:
            return "invalid", f"not written: {lost}, declared twice: {dup}"
        return "valid", ""
    if ioc["xml_valid"] != "Yes":
        return "invalid", ioc["xml_error"]
    if not ioc.get("written"):
        return "invalid", ioc.get("write_message", "no HDF5 file")
    paths = declared_paths(path)
    lost = sorted({p for p in paths if p not in ioc["tree"]})
    lost += sorted(f"{p} (empty)" for p in declared_constants(path) if p in ioc["empty"])
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if lost or dup:
        return "invalid", f"not written: {lost}, declared twice: {dup}"
    return "valid", ""


def measure(ioc: RealIOC, case: dict, outdir: Path) -> dict:
    """One case; an IOC that dies on it is recorded as such and started again."""
    try:
        if case["kind"] == "attributes":
            return measure_attributes(ioc, case["path"], outdir)
        return measure_layout(ioc, case["path"], outdir, case["attributes_path"])
    except RuntimeError:
        if ioc.proc is None:
            raise
        # a CA failure: the IOC may be dying (a core dump takes a while on a busy machine)
        try:
            ioc.proc.wait(timeout=ioc.death_wait)
        except subprocess.TimeoutExpired:
            if _answers(ioc):
                raise
            ioc.stop()  # alive but deaf: as good as dead
        ioc.proc = None
        ioc.start()
        prepare(ioc)
        return {"crashed": True}
    except OSError as exc:  # an HDF5 file h5py cannot read at all
        return {"unreadable": str(exc)[:80]}


def _answers(ioc: RealIOC) -> bool:
    try:
        ioc.get("HDF1:XMLValid_RBV", timeout=2.0)
    except RuntimeError:
        return False
    return True


ABOUT = {
    "what": "verdicts of the real ADCore IOC on every XML file of tests/data and "
    "../shared/reference/adcore; tests/test_xml_real_ioc.py checks adtoolkit xml validate "
    "against them and re-measures them",
    "ioc": "../shared/real-adsim: simDetector, ADCore R3-14-185-gee039d24, prefix 13SIM1:, "
    "started with 'var eraseNDAttributes 1' (else pooled NDArrays keep the attributes of "
    "earlier files)",
    "attributes": "path put to cam1:NDAttributesFile (HDF1 default layout); ioc.status is "
    "cam1:NDAttributesStatus; one 16x8 frame written by HDF1 (Single, StoreAttr=Yes, "
    "StorePerform=Yes); ioc.ndattributes are /entry/instrument/NDAttributes/* minus the "
    "NDArray* ones, ioc.no_value those written as float32 NaN",
    "layout": "path put to HDF1:XMLFileName after its 'attributes' file (or one defining none) "
    "to cam1:NDAttributesFile; ioc.xml_valid/xml_error are XMLValid_RBV/XMLErrorMsg_RBV; "
    "ioc.tree lists every link and path@attribute of the file written, ioc.empty the "
    "datasets written empty; written=false with HDF1's WriteMessage when no file came out",
    "verdict": "invalid when the IOC refuses the file (status, XMLValid No, no file, crash) or "
    "leaves out something it asks for (an Attribute, a layout object or attribute, a constant "
    "written empty, a name declared twice); see ioc_verdict in tests/real_adsim_xml.py",
    "record": "python3 tests/real_adsim_xml.py PORT (a free CA port; PORT+2 and +3 too)",
}


def compare_sim(port: int) -> None:
    """Measure adtoolkit's simulated IOC on every recorded case; print where it differs."""
    table = json.loads(VERDICTS.read_text())["cases"]
    files = {key_of(p): p for p in xml_files()}
    same = 0
    with real_ioc(port, SimIOC) as ioc, tempfile.TemporaryDirectory() as out:
        for row in table:
            path = files[row["file"]]
            pair = files[row["attributes"]] if row["attributes"] else None
            case = {**row, "path": path, "attributes_path": pair}
            try:
                r = measure(ioc, case, Path(out))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                r = {"error": str(exc)[-160:]}
            verdict = ioc_verdict({**row, "ioc": r}, path) if "error" not in r else ("?", "")
            same += verdict[0] == row["verdict"]
            if verdict[0] != row["verdict"] or r != row["ioc"]:
                diff = {k: (row["ioc"].get(k), r.get(k)) for k in set(r) | set(row["ioc"])}
                diff = {k: v for k, v in diff.items() if v[0] != v[1]}
                head = {"file": row["file"], "kind": row["kind"], "real": row["verdict"]}
                print(json.dumps({**head, "sim": verdict, "diff": diff}), flush=True)
    print(f"sim IOC gives the real IOC's verdict on {same}/{len(table)}")


if __name__ == "__main__":  # real_adsim_xml.py PORT [FILE...]: record the table (or print)
    if sys.argv[1] == "--sim":  # real_adsim_xml.py --sim PORT
        compare_sim(int(sys.argv[2]))
        sys.exit(0)
    port = int(sys.argv[1])
    chosen = [Path(a).resolve() for a in sys.argv[2:]] or None
    rows = []
    with real_ioc(port) as ioc, tempfile.TemporaryDirectory() as out:
        for case in cases(chosen):
            r = measure(ioc, case, Path(out))
            row = {k: v for k, v in case.items() if not k.endswith("path")}
            row["sha256"] = sha(case["path"])
            row["verdict"], row["why"] = ioc_verdict({**row, "ioc": r}, case["path"])
            row["ioc"] = r
            rows.append(row)
            print(json.dumps(row), flush=True)
    if chosen is None:
        VERDICTS.write_text(json.dumps({"about": ABOUT, "cases": rows}, indent=1) + "\n")
