"""Differential records harness: every record of the real ADSimDetector IOC against ours.

Why: the simulated IOC's record surface was written from our reading of ADCore;
the real R3-14 IOC (``../shared/real-adsim``) is the judge.  Both IOCs are
started fresh, every record the real IOC lists (``pvlist-13SIM1.txt``) is read
over Channel Access from both, and each difference is classified by kind:

- ``missing``: the real IOC serves the record, ours does not;
- ``extra``: ours serves a record the real IOC does not have;
- ``native_type``, ``count``, ``enum``, ``value``: the channel's native DBR type,
  element count, enum strings (in order) and value on a fresh IOC;
- ``ctrl``: the DBR_CTRL metadata a client sees (units, precision, limits);
- ``field``: a record field (``.RTYP .DESC .EGU .PREC .HOPR .LOPR .DRVH .DRVL
  .DTYP .SCAN .PINI``) of a record both serve that differs or that ours lacks.

Differences that cannot (yet) be otherwise are listed in
``tests/data/differential_allowlist.toml``, each with its reason; the harness
reports them by count, apart from the ones not allowed.

Run ``python3 tests/differential.py`` for the counts by kind (``--list KIND``
prints the differences themselves).  The CA reads run in a child process per
comparison so the CA environment (both IOCs' ports) is set before pyepics
creates its context, whatever the calling process already did.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
REAL_TARBALL = SHARED / "real-adsim" / "real-adsim-runtime.tar.gz"
ALLOWLIST = HERE / "data" / "differential_allowlist.toml"

REAL_PREFIX = "RDIF:"
OURS_PREFIX = "ODIF:"
#: record fields compared (the VAL's own metadata is compared as ``ctrl``)
FIELDS = ("RTYP", "DESC", "EGU", "PREC", "HOPR", "LOPR", "DRVH", "DRVL", "DTYP", "SCAN", "PINI")
#: waveform elements compared in values (ArrayData's 12 M are zeros on both anyway)
VALUE_ELEMENTS = 64
KINDS = ("missing", "extra", "native_type", "count", "enum", "ctrl", "value", "field")


def real_ioc_available() -> str | None:
    """None if the real IOC can run here, else the reason it cannot."""
    if not REAL_TARBALL.exists():
        return f"the real ADSimDetector IOC is not here ({REAL_TARBALL} is absent)"
    return None


# --------------------------------------------------------------------------
# the two IOCs


@contextlib.contextmanager
def real_ioc(prefix: str, port: int, timeout: float = 60.0) -> Iterator[Path]:
    """The real IOC on ``port`` (CA; pvAccess on port+2/+3), unpacked in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="real-adsim-") as tmp:
        with tarfile.open(REAL_TARBALL) as tar:
            tar.extractall(tmp, filter="tar") if hasattr(
                tarfile, "data_filter"
            ) else tar.extractall(tmp)
        root = Path(tmp) / "real-adsim"
        proc = subprocess.Popen(
            [str(root / "run.sh"), prefix, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_real_ready(proc, prefix, port, root, timeout)
            yield root
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_real_ready(proc: subprocess.Popen, prefix: str, port: int, root: Path, timeout: float):
    caget = root / "base" / "bin" / "linux-x86_64" / "caget"
    env = dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}", EPICS_CA_AUTO_ADDR_LIST="NO")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"real IOC exited with {proc.returncode}")
        try:
            res = subprocess.run(
                [str(caget), "-w", "0.5", f"{prefix}Pva1:PluginType_RBV"],
                env=env,
                capture_output=True,
                timeout=30,
            )
        except subprocess.TimeoutExpired:  # a loaded machine: ask again until the deadline
            continue
        if res.returncode == 0:
            return
    raise RuntimeError(f"real IOC {prefix} on port {port} not ready within {timeout} s")


def real_record_list(root: Path, prefix: str) -> dict[str, str]:
    """Record name (without prefix) -> record type, from the real IOC's pvlist."""
    records = {}
    for line in (root / "pvlist-13SIM1.txt").read_text().splitlines():
        name, _, rtype = line.strip().partition(" ")
        if name.startswith("13SIM1:"):
            records[name[len("13SIM1:") :]] = rtype.strip()
    return records


def ours_record_list(prefix: str, extra_args: tuple[str, ...] = ()) -> list[str]:
    """Every PV the simulated IOC serves (``adtoolkit ioc --list-pvs``), without prefix."""
    out = subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", "--prefix", prefix, "--list-pvs", *extra_args],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(),
        timeout=300,
    ).stdout
    return [line[len(prefix) :] for line in out.split() if line.startswith(prefix)]


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


# --------------------------------------------------------------------------
# reading every record (in a child process: its own CA context)


def snapshot(
    names: list[str], ports: list[int], fields: bool = True, field_records: list[str] | None = None
) -> dict[str, Any]:
    """Read ``names`` (full PV names) from the IOCs on ``ports`` in a child process;
    the fields of ``field_records`` (default: all of ``names``) too."""
    env = _child_env(
        EPICS_CA_ADDR_LIST=" ".join(f"127.0.0.1:{p}" for p in ports),
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_MAX_ARRAY_BYTES=str(200_000_000),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"names": names, "fields": fields, "field_records": field_records or names}, f)
        request = f.name
    try:
        res = subprocess.run(
            [sys.executable, __file__, "_snapshot", request],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        os.unlink(request)
    if res.returncode != 0:
        raise RuntimeError(f"snapshot failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout)


def _plain(value: Any) -> Any:
    """A JSON-able value, NaN-safe, waveforms cut to VALUE_ELEMENTS."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in list(value)[:VALUE_ELEMENTS]]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _do_snapshot(request: str) -> None:
    """Child: connect every channel, then read type, count, ctrl metadata, value, fields."""
    from epics import ca

    spec = json.loads(Path(request).read_text())
    names: list[str] = spec["names"]
    ca.initialize_libca()

    def connect(pvs: list[str], timeout: float, stall: float = 20.0) -> dict[str, Any]:
        """Connect all; stop when nothing more connected for ``stall`` s (a field
        the record type lacks never connects) or after ``timeout``."""
        chids = {pv: ca.create_channel(pv, connect=False, auto_cb=False) for pv in pvs}
        deadline = time.monotonic() + timeout
        pending = dict(chids)
        last_progress = time.monotonic()
        while pending and time.monotonic() < deadline:
            ca.poll(0.05, 1.0)
            before = len(pending)
            pending = {pv: c for pv, c in pending.items() if not ca.isConnected(c)}
            if len(pending) < before:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall:
                break
        return {pv: c for pv, c in chids.items() if pv not in pending}

    connected = connect(names, 120.0)
    result: dict[str, Any] = {}
    for pv, chid in connected.items():
        ftype = ca.field_type(chid)
        count = ca.element_count(chid)
        result[pv] = {"type": ca.dbr.Name(ftype).lower(), "count": count}
        ca.get(chid, count=min(count, VALUE_ELEMENTS), wait=False, as_string=False)
    ca.pend_event(0.5)
    for pv, chid in connected.items():
        entry = result[pv]
        value = ca.get_complete(chid, count=min(entry["count"], VALUE_ELEMENTS), timeout=20)
        entry["value"] = _plain(value)
        ctrl = ca.get_ctrlvars(chid, timeout=20) or {}
        entry["ctrl"] = {k: _plain(v) for k, v in ctrl.items() if k not in ("status", "severity")}
    if spec["fields"]:
        wanted = set(spec["field_records"])
        field_pvs = [f"{pv}.{f}" for pv in connected if pv in wanted for f in FIELDS]
        fconnected = connect(field_pvs, 600.0)
        # a loaded IOC may still be answering searches when the stall ends: the
        # fields one IOC has and the other did not connect get one more round
        have = {fpv.partition(":")[2] for fpv in fconnected}
        for _ in range(3):
            retry = [f for f in field_pvs if f not in fconnected and f.partition(":")[2] in have]
            if not retry:
                break
            for start in range(0, len(retry), 500):  # small batches: searches are answered
                fconnected.update(connect(retry[start : start + 500], 120.0, stall=30.0))
        for chid in fconnected.values():
            ca.get(chid, ftype=ca.dbr.STRING, wait=False)  # menus and numbers as rsrv prints them
        ca.pend_event(0.5)
        for fpv, chid in fconnected.items():
            pv, _, field = fpv.rpartition(".")
            value = ca.get_complete(chid, ftype=ca.dbr.STRING, timeout=20)
            result[pv].setdefault("fields", {})[field] = _plain(value)
    json.dump(result, sys.stdout)


# --------------------------------------------------------------------------
# comparing


@dataclass(frozen=True)
class Difference:
    kind: str
    record: str  # without prefix
    real: Any
    ours: Any
    detail: str = ""

    def __str__(self) -> str:
        what = f"{self.kind}{'/' + self.detail if self.detail else ''}"
        return f"{self.record}: {what}: real={self.real!r} ours={self.ours!r}"


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    if isinstance(a, list) and isinstance(b, list):
        n = max(len(a), len(b))
        a = a + [0] * (n - len(a))  # a short waveform reads as zero-padded
        b = b + [0] * (n - len(b))
        return all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    # an array whose NORD is 1 reads as a scalar from caproto and zero-padded
    # to the count asked for from rsrv: compare the padded forms
    if isinstance(a, list) and not isinstance(b, list | str):
        return _same_value(a, [b])
    if isinstance(b, list) and not isinstance(a, list | str):
        return _same_value([a], b)
    return a == b


#: DBR_CTRL keys that are the record's own fields (EGU, PREC, HOPR/LOPR, DRVH/DRVL)
CTRL_KEYS = (
    "units",
    "precision",
    "upper_disp_limit",
    "lower_disp_limit",
    "upper_ctrl_limit",
    "lower_ctrl_limit",
)


def compare(
    real_records: Mapping[str, str],
    ours_records: list[str],
    real: Mapping[str, Any],
    ours: Mapping[str, Any],
) -> list[Difference]:
    diffs: list[Difference] = []
    ours_set = set(ours_records)
    for name in ours_records:
        if name not in real_records:
            diffs.append(Difference("extra", name, None, "served"))
    for name, rtype in real_records.items():
        r = real.get(REAL_PREFIX + name)
        if r is None:
            continue  # the real IOC lists it but did not answer (none seen so far)
        if name not in ours_set:
            diffs.append(Difference("missing", name, rtype, None))
            continue
        o = ours.get(OURS_PREFIX + name)
        if o is None:
            diffs.append(Difference("missing", name, rtype, "listed but not connected"))
            continue
        if r["type"] != o["type"]:
            diffs.append(Difference("native_type", name, r["type"], o["type"]))
        if r["count"] != o["count"]:
            diffs.append(Difference("count", name, r["count"], o["count"]))
        r_enum = r["ctrl"].get("enum_strs")
        o_enum = o["ctrl"].get("enum_strs")
        if (r_enum or o_enum) and list(r_enum or []) != list(o_enum or []):
            diffs.append(Difference("enum", name, r_enum, o_enum))
        for key in CTRL_KEYS:
            if key in r["ctrl"] and not _same_value(r["ctrl"][key], o["ctrl"].get(key)):
                diffs.append(Difference("ctrl", name, r["ctrl"][key], o["ctrl"].get(key), key))
        r_val, o_val = r.get("value"), o.get("value")
        if r["type"] == o["type"] and not _same_value(r_val, o_val):
            diffs.append(Difference("value", name, r_val, o_val))
        r_fields, o_fields = r.get("fields", {}), o.get("fields", {})
        for field, r_f in r_fields.items():
            o_f = o_fields.get(field)
            if not _same_value(r_f, o_f) and not _same_field_text(r_f, o_f):
                diffs.append(Difference("field", name, r_f, o_f, field))
    return diffs


def _same_field_text(a: Any, b: Any) -> bool:
    """Numeric fields read as strings: "3.000" and "3" are the same PREC."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------
# the allowlist


@dataclass(frozen=True)
class AllowEntry:
    records: tuple[str, ...]  # fnmatch patterns on names without prefix
    kinds: tuple[str, ...]  # difference kinds ("*" for all)
    reason: str
    fields: tuple[str, ...] = ()  # for kind "field"/"ctrl": which fields ("" = all)

    def covers(self, diff: Difference) -> bool:
        if "*" not in self.kinds and diff.kind not in self.kinds:
            return False
        if self.fields and diff.detail not in self.fields:
            return False
        return any(fnmatch.fnmatchcase(diff.record, pat) for pat in self.records)


def load_allowlist(path: Path = ALLOWLIST) -> list[AllowEntry]:
    """Entries of the allowlist file; each must name records, kinds and a reason."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    entries = []
    for i, item in enumerate(data.get("allow", [])):
        for key in ("records", "kinds", "reason"):
            if not item.get(key):
                raise ValueError(f"{path}: allow[{i}] has no {key!r}")
        entries.append(
            AllowEntry(
                records=tuple(item["records"]),
                kinds=tuple(item["kinds"]),
                reason=str(item["reason"]),
                fields=tuple(item.get("fields", ())),
            )
        )
    return entries


def split_allowed(
    diffs: list[Difference], allow: list[AllowEntry]
) -> tuple[list[Difference], dict[str, list[Difference]]]:
    """(differences not allowed, reason -> allowed differences)."""
    rest: list[Difference] = []
    allowed: dict[str, list[Difference]] = {}
    for d in diffs:
        entry = next((e for e in allow if e.covers(d)), None)
        if entry is None:
            rest.append(d)
        else:
            allowed.setdefault(entry.reason, []).append(d)
    return rest, allowed


# --------------------------------------------------------------------------
# one run


@dataclass
class Report:
    differences: list[Difference]
    not_allowed: list[Difference]
    allowed: dict[str, list[Difference]]
    real_records: int
    ours_records: int

    def counts(self, diffs: list[Difference] | None = None) -> Counter:
        return Counter(d.kind for d in (self.differences if diffs is None else diffs))


def run(ours_args: tuple[str, ...] = (), fields: bool = True) -> Report:
    """Start both IOCs fresh, read every record from both, compare."""
    from adtoolkit.ioc.launcher import SimulatedIOC, reserve_ports

    ports = reserve_ports(8)
    real_port = ports[0]
    ours_port = next(p for p in ports[1:] if abs(p - real_port) >= 4)
    ours_names = ours_record_list(OURS_PREFIX, ours_args)
    with real_ioc(REAL_PREFIX, real_port) as root:
        real_records = real_record_list(root, REAL_PREFIX)
        with SimulatedIOC(prefix=OURS_PREFIX, port=ours_port, extra_args=ours_args) as ours_ioc:
            assert ours_ioc.running
            common = [n for n in real_records if n in set(ours_names)]
            names = [REAL_PREFIX + n for n in real_records] + [OURS_PREFIX + n for n in common]
            field_records = [p + n for n in common for p in (REAL_PREFIX, OURS_PREFIX)]
            data = snapshot(names, [real_port, ours_port], fields, field_records)
    real = {k: v for k, v in data.items() if k.startswith(REAL_PREFIX)}
    ours = {k: v for k, v in data.items() if k.startswith(OURS_PREFIX)}
    diffs = compare(real_records, ours_names, real, ours)
    rest, allowed = split_allowed(diffs, load_allowlist())
    return Report(diffs, rest, allowed, len(real_records), len(ours_names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", metavar="KIND", action="append", default=[], help="print diffs")
    parser.add_argument("--all", action="store_true", help="--list includes allowlisted ones")
    parser.add_argument("--no-fields", action="store_true", help="skip record fields")
    parser.add_argument("--json", metavar="PATH", help="write every difference as JSON")
    parser.add_argument("ours_args", nargs="*", help="extra arguments for adtoolkit ioc")
    args = parser.parse_args(argv)
    reason = real_ioc_available()
    if reason:
        print(f"skipped: {reason}")
        return 0
    t0 = time.monotonic()
    report = run(tuple(args.ours_args), fields=not args.no_fields)
    print(
        f"records: real {report.real_records}, ours {report.ours_records} "
        f"({time.monotonic() - t0:.0f} s)"
    )
    total, rest = report.counts(), report.counts(report.not_allowed)
    print(f"{'kind':<12} {'all':>6} {'not allowed':>12}")
    for kind in KINDS:
        print(f"{kind:<12} {total[kind]:>6} {rest[kind]:>12}")
    print(f"{'total':<12} {sum(total.values()):>6} {sum(rest.values()):>12}")
    for reason_text, diffs in report.allowed.items():
        print(f"allowed {len(diffs):>5}: {reason_text}")
    for kind in args.list:
        pool = report.differences if args.all else report.not_allowed
        for d in pool:
            if kind in (d.kind, "all"):
                print(d)
    if args.json:
        Path(args.json).write_text(
            json.dumps([d.__dict__ for d in report.differences], indent=0, default=str)
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_snapshot":
        _do_snapshot(sys.argv[2])
    else:
        sys.exit(main())
