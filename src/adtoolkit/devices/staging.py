"""Staging that is right by construction.

Two problems with plain ophyd staging motivate this module:

* Order.  ``stage_sigs`` is applied in insertion order, so ``create_directory`` added
  after ``file_path`` never creates anything (ophyd issue 1027: ADCore creates
  directories only while FilePath is written), and ``capture`` must be the very last
  setting (it opens the file with everything else already in place).  Users add
  stage_sigs in any order; :class:`StageSigs` iterates in the order that works.
* Restoring.  ``Device.unstage`` stops at the first failing ``set`` and leaves the
  remaining settings changed.  :func:`restore` tries every setting and then reports all
  failures together.

Settings are written with CA put-completion instead of ophyd's ``set().wait()``,
which polls each readback in turn.  The writes of a whole stage (detector, cam and
plugins) are sent back to back and their completions awaited together at a few
*barriers* -- before a check that reads a result (FilePathExists_RBV), before a busy
record (``capture``) and at the end -- so a stage costs a handful of round trips, not
one per setting.  Order is still guaranteed: an IOC processes the requests of one CA
circuit in order, and an asyn port executes writes in order.  Busy records are the
exception: their put completes only when the operation ends, so for them we wait for
the readback to reach the requested value.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from numbers import Integral, Real
from typing import Any

from ophyd import Device, Signal
from ophyd.signal import EpicsSignalBase

from .batchread import read_many
from .errors import ConfigurationError, StagingError

__all__ = [
    "StageSigs",
    "FastStaging",
    "apply_settings",
    "restore",
    "put_wait",
    "put_wait_readback",
    "validate_value",
    "stage_rank",
]

#: attribute name -> rank; unlisted names keep the user's order at rank 50.
_RANKS = {
    "create_directory": 0,  # before file_path: ADCore creates directories on FilePath write
    "file_path": 1,
    "capture": 100,  # always last: opens the file with every other setting in place
}

#: busy-record settings whose put completes only when the operation ends
READBACK_WAIT = frozenset({"capture", "acquire"})

#: written even when the IOC already has the value: FilePath writes are what make ADCore
#: check (and create) the directory
ALWAYS_WRITE = frozenset({"file_path", "capture"})

#: settings the IOC itself moves during a run (AutoIncrement advances FileNumber when a
#: file closes): restored at unstage even when stage found them right and wrote nothing
IOC_MOVES = frozenset({"file_number"})


def current(sig: Signal) -> Any:
    """The signal's value, read over CA now.

    Not from a monitor: monitor updates of readbacks can trail a put's completion by
    tens of milliseconds (seen with the simulated IOC), so a value cached from a monitor
    right after our own writes (an unstage followed by the next stage) can be stale and
    would make us skip a write that is needed.
    """
    return sig.get(use_monitor=False)


def _key_name(key: Any) -> str:
    if isinstance(key, str):
        return key.rsplit(".", 1)[-1]
    return getattr(key, "attr_name", None) or getattr(key, "name", "")


def stage_rank(key: Any) -> int:
    """Position class of a stage_sigs key (string attribute path or Signal)."""
    return _RANKS.get(_key_name(key), 50)


class StageSigs(OrderedDict):
    """An ordered ``stage_sigs`` mapping that always iterates in a working order.

    ``create_directory`` comes first, ``file_path`` second, ``capture`` last; all other
    keys keep the order in which they were added.  Because the order is enforced on
    every iteration, it holds however and whenever keys are added (``update``,
    item assignment, ``move_to_end``...).
    """

    def _ordered_keys(self) -> list:
        keys = list(OrderedDict.__iter__(self))
        return sorted(keys, key=stage_rank)  # sorted() is stable

    def __iter__(self) -> Iterator:
        return iter(self._ordered_keys())

    def keys(self):  # type: ignore[override]
        return self._ordered_keys()

    def items(self):  # type: ignore[override]
        return [(k, OrderedDict.__getitem__(self, k)) for k in self._ordered_keys()]

    def values(self):  # type: ignore[override]
        return [OrderedDict.__getitem__(self, k) for k in self._ordered_keys()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


def _pvname(sig: Signal) -> str:
    return getattr(sig, "setpoint_pvname", None) or getattr(sig, "pvname", None) or sig.name


def _enum_strs(sig: Signal) -> tuple:
    strs = getattr(sig, "enum_strs", None)
    if not strs:
        strs = (getattr(sig, "metadata", {}) or {}).get("enum_strs")
    return tuple(strs or ())


_UNKNOWN = object()


def validate_value(sig: Signal, value: Any, present: Any = _UNKNOWN) -> Any:
    """Check ``value`` against the PV's type and enum strings; raise ConfigurationError.

    Runs before anything is written, so a wrong value never leaves the IOC half
    configured.  Needs the signal connected (for the metadata).
    """
    pv = _pvname(sig)
    enum_strs = _enum_strs(sig)
    if enum_strs:
        if isinstance(value, str):
            if value not in enum_strs:
                raise ConfigurationError(
                    f"{pv}: {value!r} is not one of its states {list(enum_strs)}"
                )
        elif isinstance(value, Integral) and not isinstance(value, bool):
            if not 0 <= int(value) < len(enum_strs):
                raise ConfigurationError(
                    f"{pv}: state number {value} out of range 0..{len(enum_strs) - 1} "
                    f"({list(enum_strs)})"
                )
        elif isinstance(value, bool):
            pass
        else:
            raise ConfigurationError(
                f"{pv}: expected one of {list(enum_strs)} or its index, got "
                f"{type(value).__name__} {value!r}"
            )
        return value
    if present is _UNKNOWN:
        present = sig.get(use_monitor=True)
    if getattr(sig, "_string", False) or isinstance(present, str):
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{pv}: expected a string, got {type(value).__name__} {value!r}"
            )
        return value
    if isinstance(value, str) or not isinstance(value, Real):
        raise ConfigurationError(f"{pv}: expected a number, got {type(value).__name__} {value!r}")
    return value


def put_wait(sig: Signal, value: Any, timeout: float) -> None:
    """Write with CA put-completion and wait for the completion (one round trip).

    Soft signals (no CA, e.g. ophyd's fake devices in unit tests) are simply set.
    """
    if not isinstance(sig, EpicsSignalBase):
        sig.set(value).wait(timeout)
        return
    done = threading.Event()
    sig.put(value, use_complete=True, callback=lambda *a, **k: done.set(), timeout=timeout)
    if not done.wait(timeout):
        raise TimeoutError(
            f"writing {value!r} to {_pvname(sig)} did not complete within {timeout:g} s"
        )


def _same(sig: Signal, current: Any, value: Any) -> bool:
    if current == value:
        return True
    enum_strs = _enum_strs(sig)
    if enum_strs and isinstance(value, str) and isinstance(current, Integral):
        return 0 <= current < len(enum_strs) and enum_strs[current] == value
    if enum_strs and isinstance(current, str) and isinstance(value, Integral):
        return 0 <= value < len(enum_strs) and enum_strs[value] == current
    return False


#: a signal to read when a busy write ends without reaching its value, and a function
#: of that signal's value that returns the exception to raise (or None)
Watch = tuple[Signal, Callable[[Any], BaseException | None]]


def put_wait_readback(sig: Signal, value: Any, timeout: float, watch: Watch | None = None) -> None:
    """Write and wait (on a monitor) until the readback equals the value.

    For busy records, whose put completes only when the operation they start ends.
    ``watch`` lets the IOC's own error report end the wait at once instead of after
    ``timeout`` with nothing but the readback to show.  It is read when *this* write's
    put-completion arrives while the readback is not there: a busy record completes
    early only when the operation ended at once (e.g. a file plugin's Capture=1 that
    could not open the file sets WriteStatus to "Write error" and Capture back to 0).
    A monitor on the watched signal would not do: a "Write error" left by an earlier
    failure looks the same as a new one, and a real IOC posts no event when the value
    does not change.
    """
    if not isinstance(sig, EpicsSignalBase):
        sig.set(value).wait(timeout)
        return
    reached = threading.Event()
    ended = threading.Event()

    def cb(value: Any = None, **kwargs: Any) -> None:
        if _same(sig, value, target):
            reached.set()

    def put_done(*args: Any, **kwargs: Any) -> None:
        ended.set()
        reached.set()

    target = value
    deadline = time.monotonic() + timeout
    cid = sig.subscribe(cb, run=False)
    try:
        if watch is None:
            sig.put(value, use_complete=False)
        else:
            sig.put(value, use_complete=True, callback=put_done, timeout=timeout)
        if _same(sig, sig.get(use_monitor=False), value):
            return
        while _wait_until(reached, deadline):
            if not ended.is_set():
                return  # only the monitor sets ``reached`` alone: the value is there
            # this write's put-completion: the operation ended (or never was busy)
            ended.clear()
            reached.clear()
            if _same(sig, sig.get(use_monitor=False), value):
                return
            if watch is not None:
                exc = watch[1](watch[0].get(use_monitor=False))
                if exc is not None:
                    raise exc
                watch = None  # no error reported: wait for the readback as usual
        raise TimeoutError(
            f"{_pvname(sig)} was set to {value!r} but its readback {sig.pvname} "
            f"shows {sig.get(use_monitor=False)!r} after {timeout:g} s"
        )
    finally:
        sig.unsubscribe(cid)


def resolve(device: Device, stage_sigs: Iterable[tuple[Any, Any]]) -> list[tuple[Signal, Any]]:
    out = []
    for key, value in stage_sigs:
        sig = getattr(device, key) if isinstance(key, str) else key
        out.append((sig, value))
    return out


def _wait_until(event: threading.Event, deadline: float) -> bool:
    return event.wait(max(0.0, deadline - time.monotonic()))


class _Pipeline:
    """Writes issued back to back, completions awaited together.

    A CA put-completion costs a full round trip (about 20 ms from pyepics to a caproto
    server, see MEASUREMENTS.md), but puts on one circuit are processed by the IOC in
    the order they were sent, and an asyn port executes writes in order.  So we send
    every write at once and wait for all completions at *barriers*: before a check that
    reads back a result, and before and after a busy-record write.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pending: list[tuple[Signal, Any, threading.Event]] = []

    def put(self, sig: Signal, value: Any) -> None:
        if not isinstance(sig, EpicsSignalBase):
            sig.set(value).wait(self.timeout)
            return
        done = threading.Event()
        sig.put(value, use_complete=True, callback=lambda *a, **k: done.set(), timeout=self.timeout)
        self.pending.append((sig, value, done))

    def barrier(self) -> None:
        deadline = time.monotonic() + self.timeout
        late = []
        for sig, value, done in self.pending:
            if not _wait_until(done, deadline):
                late.append(f"{_pvname(sig)} <- {value!r}")
        self.pending.clear()
        if late:
            raise TimeoutError(
                f"write(s) did not complete within {self.timeout:g} s: " + ", ".join(late)
            )


_session = threading.local()


def _shared_pipe() -> _Pipeline | None:
    return getattr(_session, "pipe", None)


def apply_settings(
    pairs: list[tuple[Signal, Any]],
    timeout: float,
    checks: dict[str, Callable[[], None]] | None = None,
    watches: dict[str, Watch] | None = None,
) -> list[tuple[Signal, Any]]:
    """Validate all values, read the originals, then write in order.

    Returns the ``(signal, original)`` pairs applied.  If a write or a check fails,
    everything already applied is restored before the exception propagates.
    ``checks`` maps an attribute name to a callable run right after that setting;
    ``watches`` maps the name of a busy-record setting to a :data:`Watch` for its wait.
    Settings that already have the wanted value are not written (and not restored,
    except those the IOC moves during a run, :data:`IOC_MOVES`).

    Inside :meth:`FastStaging.stage` the writes join the stage-wide pipeline, whose
    final barrier the outermost stage waits for; called alone, this function waits for
    its own writes before returning.
    """
    checks = checks or {}
    watches = watches or {}
    # read first (the present value tells a string PV from a numeric one), check
    # every value, and only then write anything
    # (all read in one round trip, see batchread; still read now, not from a monitor)
    sigs = [sig for sig, _ in pairs]
    originals = list(zip(sigs, read_many(sigs), strict=True))
    for (sig, value), (_, present) in zip(pairs, originals, strict=True):
        validate_value(sig, value, present)
    applied: list[tuple[Signal, Any]] = []
    shared = _shared_pipe()
    pipe = shared or _Pipeline(timeout)
    try:
        for (sig, value), (_, original) in zip(pairs, originals, strict=True):
            name = _key_name(sig)
            check = checks.get(name)
            if name not in ALWAYS_WRITE and _same(sig, original, value):
                if name in IOC_MOVES:  # no write, but the run will move it: restore
                    applied.append((sig, original))
            elif name in READBACK_WAIT:
                pipe.barrier()
                applied.append((sig, original))
                put_wait_readback(sig, value, timeout, watches.get(name))
            else:
                applied.append((sig, original))
                pipe.put(sig, value)
            if check is not None:
                pipe.barrier()
                check()
        if shared is None:
            pipe.barrier()
    except BaseException:
        try:
            restore(applied, timeout)
        except StagingError:
            pass  # the original error is the one to report
        raise
    return applied


#: how long a restored setting may read back its old value before the restore is
#: reported as refused (s)
RESTORE_READBACK_GRACE = 1.0


#: settings whose restore is read back: string waveforms, the writes an IOC is most
#: likely to refuse (length, encoding) while the put itself still "completes"
def _verify_restore(sig: Signal) -> bool:
    return isinstance(sig, EpicsSignalBase) and bool(getattr(sig, "_string", False))


def restore(applied: list[tuple[Signal, Any]], timeout: float) -> None:
    """Restore settings in reverse order; try every one, then report all failures.

    Inside :meth:`FastStaging.unstage` the writes join the unstage-wide pipeline and
    the read-back checks run once, after its final barrier.
    """
    shared = _shared_pipe()
    pipe = shared or _Pipeline(timeout)
    errors: list[str] = getattr(_session, "errors", None) if shared else None  # type: ignore[assignment]
    verify: list = getattr(_session, "verify", None) if shared else None  # type: ignore[assignment]
    own = shared is None
    if own:
        errors, verify = [], []
    for sig, original in reversed(applied):
        try:
            if _key_name(sig) in READBACK_WAIT:
                pipe.barrier()
                put_wait_readback(sig, original, timeout)
            else:
                pipe.put(sig, original)
                if _verify_restore(sig):
                    verify.append((sig, original))
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(f"{_pvname(sig)} <- {original!r}: {exc}")
    if own:
        _finish_restore(pipe, errors, verify)


def _finish_restore(pipe: _Pipeline, errors: list[str], verify: list) -> None:
    try:
        pipe.barrier()
    except Exception as exc:  # noqa: BLE001
        errors.append(str(exc))
    # A CA put the IOC rejects still completes (the completion carries no status that
    # pyepics/ophyd pass on), so read back what is likely to be refused: a restore that
    # did not take must not pass silently.
    failed = {e.split(" <- ")[0] for e in errors}
    verify = [(sig, original) for sig, original in verify if _pvname(sig) not in failed]
    try:  # one round trip for all; if one cannot be read, find it one by one below
        batch = read_many([sig for sig, _ in verify], setpoint=True)
    except Exception:  # noqa: BLE001
        batch = None
    # A completed put can still read back the old value for a few ms (seen with the
    # simulated IOC under load right after an aborted acquisition): look again, briefly,
    # before calling a restore refused.
    deadline = time.monotonic() + min(pipe.timeout, RESTORE_READBACK_GRACE)
    for i, (sig, original) in enumerate(verify):
        current = batch[i] if batch is not None else None
        if batch is not None and _close(sig, current, original):
            continue
        while True:
            try:
                current = _setpoint(sig)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{_pvname(sig)}: cannot read back: {exc}")
                break
            if _close(sig, current, original):
                break
            if time.monotonic() > deadline:
                errors.append(f"{_pvname(sig)} <- {original!r}: the IOC kept {current!r}")
                break
            time.sleep(0.01)
    if errors:
        raise StagingError("could not restore: " + "; ".join(errors))


def _setpoint(sig: Signal) -> Any:
    if getattr(sig, "setpoint_pvname", None) and sig.setpoint_pvname != sig.pvname:
        return sig.get_setpoint(use_monitor=False)
    return sig.get(use_monitor=False)


def _close(sig: Signal, current: Any, wanted: Any) -> bool:
    if _same(sig, current, wanted):
        return True
    if isinstance(current, str) and isinstance(wanted, str):
        return current.rstrip("\x00") == wanted.rstrip("\x00")
    try:
        import numpy as np

        return bool(np.allclose(current, wanted, rtol=1e-6, atol=1e-9))
    except (TypeError, ValueError):
        return False


class isolated:
    """Context: writes inside wait for themselves, outside any stage-wide pipeline.

    For sequences that must be complete before they go on (priming: the cam settings
    must be in place before Acquire=1, and restored before the stage continues).
    """

    def __enter__(self) -> isolated:
        self._saved = (
            _shared_pipe(),
            getattr(_session, "errors", None),
            getattr(_session, "verify", None),
        )
        if self._saved[0] is not None:
            self._saved[0].barrier()
        _session.pipe = _session.errors = _session.verify = None
        return self

    def __exit__(self, *exc: object) -> None:
        _session.pipe, _session.errors, _session.verify = self._saved


class _Session:
    """Context: one pipeline shared by a device tree's stage or unstage."""

    def __init__(self, timeout: float, collect: bool) -> None:
        self.timeout = timeout
        self.collect = collect
        self.outer = False

    def __enter__(self) -> _Session:
        if _shared_pipe() is None:
            self.outer = True
            _session.pipe = _Pipeline(self.timeout)
            _session.errors = []
            _session.verify = []
        return self

    def finish(self) -> None:
        """Final barrier (+ read-back checks for an unstage); outermost only."""
        if not self.outer:
            return
        pipe, errors, verify = _session.pipe, _session.errors, _session.verify
        self._clear()
        if self.collect:
            _finish_restore(pipe, errors, verify)
        else:
            pipe.barrier()

    def _clear(self) -> None:
        _session.pipe = None
        _session.errors = None
        _session.verify = None

    def __exit__(self, *exc: object) -> None:
        if self.outer and _shared_pipe() is not None:
            # leaving with an exception: still wait for what was sent, then forget it
            pipe = _session.pipe
            self._clear()
            try:
                pipe.barrier()
            except Exception:  # noqa: BLE001 - the original exception is reported
                pass


class FastStaging(Device):
    """Device mixin: ordered stage_sigs, put-completion writes, complete restore.

    Subclasses may override :meth:`_stage_pairs` (the settings for this stage, computed
    at stage time) and :meth:`_stage_checks`.
    """

    stage_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage_sigs = StageSigs(self.stage_sigs)
        self._applied: list[tuple[Signal, Any]] = []

    def __setattr__(self, name: str, value: Any) -> None:
        # keep the ordering guarantee even if someone assigns a plain dict
        if name == "stage_sigs" and not isinstance(value, StageSigs):
            value = StageSigs(value)
        super().__setattr__(name, value)

    def _stage_pairs(self) -> list[tuple[Signal, Any]]:
        return resolve(self, StageSigs(self.stage_sigs).items())

    def _stage_checks(self) -> dict[str, Callable[[], None]]:
        return {}

    def _stage_watches(self) -> dict[str, Watch]:
        """Signals whose error report ends a busy-record wait of the stage at once."""
        return {}

    def _before_stage(self) -> None:
        """Hook run before any setting is written (e.g. priming)."""

    def stage(self) -> list[object]:
        from ophyd.device import RedundantStaging, Staged

        if self._staged != Staged.no:
            raise RedundantStaging(f"{self.name} is already (partially) staged; unstage first")
        self._staged = Staged.partially
        staged = []
        try:
            with _Session(self.stage_timeout, collect=False) as session:
                pairs = self._stage_pairs()
                self._before_stage()
                self._applied = apply_settings(
                    pairs, self.stage_timeout, self._stage_checks(), self._stage_watches()
                )
                staged.append(self)
                for attr in self._sub_devices:
                    dev = getattr(self, attr)
                    if hasattr(dev, "stage"):
                        staged.extend(dev.stage() or [dev])
                session.finish()
        except BaseException:
            try:
                self.unstage()
            except StagingError:
                pass
            raise
        self._staged = Staged.yes
        return staged

    def unstage(self) -> list[object]:
        from ophyd.device import Staged

        self._staged = Staged.partially
        errors = []
        unstaged = []
        with _Session(self.stage_timeout, collect=True) as session:
            for attr in self._sub_devices[::-1]:
                dev = getattr(self, attr)
                if hasattr(dev, "unstage"):
                    try:
                        unstaged.extend(dev.unstage() or [dev])
                    except Exception as exc:  # noqa: BLE001 - every child gets its chance
                        errors.append(str(exc))
            try:
                applied, self._applied = self._applied, []
                restore(applied, self.stage_timeout)
            except StagingError as exc:
                errors.append(str(exc))
            try:
                session.finish()
            except StagingError as exc:
                errors.append(str(exc))
        try:
            self._after_unstage()
        except Exception as exc:  # noqa: BLE001
            errors.append(str(exc))
        self._staged = Staged.no
        unstaged.append(self)
        if errors:
            raise StagingError(f"{self.name}: unstage incomplete: " + " | ".join(errors))
        return unstaged

    def _after_unstage(self) -> None:
        """Hook run after the settings are restored."""


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.001) -> None:
    """Poll ``predicate`` until true; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
