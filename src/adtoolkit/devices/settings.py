"""Apply a list of settings to the IOC and restore them: validated first, all or nothing.

* :func:`apply_settings` checks every value against its PV (type, enum states) before
  anything is written, so a wrong value never leaves the IOC half configured; if a
  write or a check fails, what was already applied is restored.
* :func:`restore` (``Device.unstage`` in ophyd stops at the first failing ``set`` and
  leaves the remaining settings changed) tries every setting, reads back those an IOC
  is likely to refuse, and then reports all failures together.

Both write through a :class:`~adtoolkit.devices.writes.WriteBatch`: given one (a
device tree's stage or unstage, see :mod:`adtoolkit.devices.staging`), they add their
writes to it and leave its last barrier -- and, for a restore, the read-back checks
(:func:`finish_restore`) -- to whoever made it; given none, they make their own and
wait for it before returning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

from ophyd import Signal
from ophyd.signal import EpicsSignalBase

from .batchread import read_many
from .errors import ConfigurationError, StagingError
from .writes import Watch, WriteBatch, enum_strs, key_name, put_wait_readback, pvname, same_value

__all__ = [
    "ALWAYS_WRITE",
    "IOC_MOVES",
    "READBACK_WAIT",
    "apply_settings",
    "finish_restore",
    "restore",
    "validate_value",
]

#: busy-record settings whose put completes only when the operation ends
READBACK_WAIT = frozenset({"capture", "acquire"})

#: written even when the IOC already has the value: FilePath writes are what make ADCore
#: check (and create) the directory
ALWAYS_WRITE = frozenset({"file_path", "capture"})

#: settings the IOC itself moves during a run (AutoIncrement advances FileNumber when a
#: file closes): restored at unstage even when stage found them right and wrote nothing
IOC_MOVES = frozenset({"file_number"})


_UNKNOWN = object()


def validate_value(sig: Signal, value: Any, present: Any = _UNKNOWN) -> Any:
    """Check ``value`` against the PV's type and enum strings; raise ConfigurationError.

    Runs before anything is written, so a wrong value never leaves the IOC half
    configured.  Needs the signal connected (for the metadata).
    """
    pv = pvname(sig)
    states = enum_strs(sig)
    if states:
        if isinstance(value, str):
            if value not in states:
                raise ConfigurationError(f"{pv}: {value!r} is not one of its states {list(states)}")
        elif isinstance(value, Integral) and not isinstance(value, bool):
            if not 0 <= int(value) < len(states):
                raise ConfigurationError(
                    f"{pv}: state number {value} out of range 0..{len(states) - 1} ({list(states)})"
                )
        elif isinstance(value, bool):
            pass
        else:
            raise ConfigurationError(
                f"{pv}: expected one of {list(states)} or its index, got "
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


def apply_settings(
    pairs: list[tuple[Signal, Any]],
    timeout: float,
    checks: dict[str, Callable[[], None]] | None = None,
    watches: dict[str, Watch] | None = None,
    batch: WriteBatch | None = None,
) -> list[tuple[Signal, Any]]:
    """Validate all values, read the originals, then write in order.

    Returns the ``(signal, original)`` pairs applied.  If a write or a check fails,
    everything already applied is restored before the exception propagates.
    ``checks`` maps an attribute name to a callable run right after that setting;
    ``watches`` maps the name of a busy-record setting to a :data:`Watch` for its wait.
    Settings that already have the wanted value are not written (and not restored,
    except those the IOC moves during a run, :data:`IOC_MOVES`).

    With ``batch`` (a stage's) the writes join it and whoever made it waits for its
    last barrier; without, this function waits for its own writes before returning.
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
    pipe = batch or WriteBatch(timeout)
    try:
        for (sig, value), (_, original) in zip(pairs, originals, strict=True):
            name = key_name(sig)
            check = checks.get(name)
            if name not in ALWAYS_WRITE and same_value(sig, original, value):
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
        if batch is None:
            pipe.barrier()
    except BaseException:
        try:
            restore(applied, timeout, batch)
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


def restore(
    applied: list[tuple[Signal, Any]], timeout: float, batch: WriteBatch | None = None
) -> None:
    """Restore settings in reverse order; try every one, then report all failures.

    With ``batch`` (an unstage's) the writes, their failures and the read-backs to do
    join it: :func:`finish_restore` of the batch reports them, once, after its last
    barrier.  Without, this function does that itself.
    """
    pipe = batch or WriteBatch(timeout)
    errors, verify = pipe.errors, pipe.verify
    for sig, original in reversed(applied):
        try:
            if key_name(sig) in READBACK_WAIT:
                pipe.barrier()
                put_wait_readback(sig, original, timeout)
            else:
                pipe.put(sig, original)
                if _verify_restore(sig):
                    verify.append((sig, original))
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(f"{pvname(sig)} <- {original!r}: {exc}")
    if batch is None:
        finish_restore(pipe)


def finish_restore(pipe: WriteBatch) -> None:
    """The last barrier of a restoring batch, then the read-back of the settings likely
    to be refused; raise StagingError listing every failure."""
    errors = pipe.errors
    try:
        pipe.barrier()
    except Exception as exc:  # noqa: BLE001
        errors.append(str(exc))
    # A CA put the IOC rejects still completes (the completion carries no status that
    # pyepics/ophyd pass on), so read back what is likely to be refused: a restore that
    # did not take must not pass silently.
    failed = {e.split(" <- ")[0] for e in errors}
    verify = [(sig, original) for sig, original in pipe.verify if pvname(sig) not in failed]
    try:  # one round trip for all; if one cannot be read, find it one by one below
        values = read_many([sig for sig, _ in verify], setpoint=True)
    except Exception:  # noqa: BLE001
        values = None
    # A completed put can still read back the old value for a few ms (seen with the
    # simulated IOC under load right after an aborted acquisition): look again, briefly,
    # before calling a restore refused.
    deadline = time.monotonic() + min(pipe.timeout, RESTORE_READBACK_GRACE)
    for i, (sig, original) in enumerate(verify):
        current = values[i] if values is not None else None
        if values is not None and _close(sig, current, original):
            continue
        while True:
            try:
                current = _setpoint(sig)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{pvname(sig)}: cannot read back: {exc}")
                break
            if _close(sig, current, original):
                break
            if time.monotonic() > deadline:
                errors.append(f"{pvname(sig)} <- {original!r}: the IOC kept {current!r}")
                break
            time.sleep(0.01)
    if errors:
        raise StagingError("could not restore: " + "; ".join(errors))


def _setpoint(sig: Signal) -> Any:
    if getattr(sig, "setpoint_pvname", None) and sig.setpoint_pvname != sig.pvname:
        return sig.get_setpoint(use_monitor=False)
    return sig.get(use_monitor=False)


def _close(sig: Signal, current: Any, wanted: Any) -> bool:
    if same_value(sig, current, wanted):
        return True
    if isinstance(current, str) and isinstance(wanted, str):
        return current.rstrip("\x00") == wanted.rstrip("\x00")
    try:
        import numpy as np

        return bool(np.allclose(current, wanted, rtol=1e-6, atol=1e-9))
    except (TypeError, ValueError):
        return False
