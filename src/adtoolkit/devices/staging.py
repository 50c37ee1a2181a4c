"""Staging that is right by construction.

Two problems with plain ophyd staging motivate this module:

* Order.  ``stage_sigs`` is applied in insertion order, so ``create_directory`` added
  after ``file_path`` never creates anything (ophyd issue 1027: ADCore creates
  directories only while FilePath is written), and ``capture`` must be the very last
  setting (it opens the file with everything else already in place).  Users add
  stage_sigs in any order; :class:`StageSigs` iterates in the order that works.
* Restoring.  ``Device.unstage`` stops at the first failing ``set`` and leaves the
  remaining settings changed.  :func:`~adtoolkit.devices.settings.restore` tries every
  setting and then reports all failures together.

One stage costs a handful of round trips, not one per setting: the device whose
``stage()`` (or ``unstage()``) is called makes one
:class:`~adtoolkit.devices.writes.WriteBatch` and passes it, explicitly, to its own
settings and to every :class:`FastStaging` child (``stage(batch=...)``), then waits for
its last barrier.  A child staged on its own makes its own batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ophyd import Device, Signal
from ophyd.device import RedundantStaging, Staged

from .errors import StagingError
from .settings import apply_settings, finish_restore, restore
from .writes import Watch, WriteBatch, key_name

__all__ = ["StageSigs", "FastStaging", "resolve", "stage_rank"]

#: attribute name -> rank; unlisted names keep the user's order at rank 50.
_RANKS = {
    "create_directory": 0,  # before file_path: ADCore creates directories on FilePath write
    "file_path": 1,
    "capture": 100,  # always last: opens the file with every other setting in place
}


def stage_rank(key: Any) -> int:
    """Position class of a stage_sigs key (string attribute path or Signal)."""
    return _RANKS.get(key_name(key), 50)


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


def resolve(device: Device, stage_sigs: Iterable[tuple[Any, Any]]) -> list[tuple[Signal, Any]]:
    """``(signal, value)`` pairs from stage_sigs keys (attribute paths or signals)."""
    out = []
    for key, value in stage_sigs:
        sig = getattr(device, key) if isinstance(key, str) else key
        out.append((sig, value))
    return out


class FastStaging(Device):
    """Device mixin: ordered stage_sigs, put-completion writes, complete restore.

    Subclasses may override :meth:`_stage_pairs` (the settings for this stage, computed
    at stage time) and :meth:`_stage_checks`.  ``stage`` and ``unstage`` take the
    batch of the device tree being staged (``batch``); subclasses that override them
    pass it on.
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

    def _before_stage(self, batch: WriteBatch) -> None:
        """Hook run before any setting of this device is written (e.g. priming);
        ``batch`` holds the writes of the stage so far."""

    def stage(self, *, batch: WriteBatch | None = None) -> list[object]:
        """ophyd's ``stage``; ``batch``: the stage of the device tree this one is part
        of (None: this device starts one, and waits for it)."""
        if self._staged != Staged.no:
            raise RedundantStaging(f"{self.name} is already (partially) staged; unstage first")
        self._staged = Staged.partially
        own = batch is None
        writes = WriteBatch(self.stage_timeout) if batch is None else batch
        staged = []
        try:
            try:
                pairs = self._stage_pairs()
                self._before_stage(writes)
                self._applied = apply_settings(
                    pairs,
                    self.stage_timeout,
                    self._stage_checks(),
                    self._stage_watches(),
                    batch=writes,
                )
                staged.append(self)
                for attr in self._sub_devices:
                    dev = getattr(self, attr)
                    if isinstance(dev, FastStaging):
                        staged.extend(dev.stage(batch=writes) or [dev])
                    elif hasattr(dev, "stage"):
                        staged.extend(dev.stage() or [dev])
                if own:
                    writes.barrier()
            except BaseException:
                if own:
                    writes.drain()  # wait for what was sent, then forget it
                raise
        except BaseException:
            try:
                # a child undoes its part inside the tree's batch; the device that
                # started the stage restores on a batch of its own, checked
                self.unstage(batch=None if own else writes)
            except StagingError:
                pass
            raise
        self._staged = Staged.yes
        return staged

    def unstage(self, *, batch: WriteBatch | None = None) -> list[object]:
        """ophyd's ``unstage``, every setting restored even if some fail; ``batch``:
        the unstage of the device tree this one is part of (None: this device starts
        one, waits for it and reads back what was likely refused)."""
        self._staged = Staged.partially
        own = batch is None
        writes = WriteBatch(self.stage_timeout) if batch is None else batch
        errors = []
        unstaged = []
        try:
            for attr in self._sub_devices[::-1]:
                dev = getattr(self, attr)
                try:
                    if isinstance(dev, FastStaging):
                        unstaged.extend(dev.unstage(batch=writes) or [dev])
                    elif hasattr(dev, "unstage"):
                        unstaged.extend(dev.unstage() or [dev])
                except Exception as exc:  # noqa: BLE001 - every child gets its chance
                    errors.append(str(exc))
            try:
                applied, self._applied = self._applied, []
                restore(applied, self.stage_timeout, writes)
            except StagingError as exc:
                errors.append(str(exc))
            if own:
                try:
                    finish_restore(writes)
                except StagingError as exc:
                    errors.append(str(exc))
        except BaseException:
            if own:
                writes.drain()
            raise
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
