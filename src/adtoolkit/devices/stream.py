"""A stream (fly scan): ``kickoff`` / ``complete`` / ``collect`` take N frames into one
HDF5 file with a single Acquire, one event and one datum per frame.

The datums are made once, at the first ``collect_asset_docs`` or ``collect``: they can
only claim frames that are in the file, so a stream collected before it ended (the
RunEngine's cleanup after an abort collects what was kicked off) is stopped first and
gets one datum per frame its file plugin wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .acquisition import AcquireBusyWatch, Acquisition, Stop
from .filestore import HDF5FileStore

__all__ = ["Stream"]


@dataclass(eq=False)
class Stream:
    """One kicked-off stream of ``num`` frames."""

    num: int
    #: armed by kickoff; its status is what ``complete()`` returns
    acquisition: Acquisition | None = None
    #: when Acquire=1 was sent
    t0: float = 0.0
    #: (datum id, timestamp) per frame, once made
    datums: list[tuple[str, float]] | None = None

    def make_datums(
        self,
        plugin: HDF5FileStore,
        image_key: str,
        watch: AcquireBusyWatch,
        stop_cam: Callable[[], None],
        timeout: float,
    ) -> None:
        """One datum per frame in the file (made once), timestamps spread evenly."""
        if self.datums is not None or self.acquisition is None:
            return
        n = self.num
        acq = self.acquisition
        if not (acq.done and acq.status.success and acq.status.interrupted is None):
            n = self._frames_streamed(watch, stop_cam, timeout)
        t1 = time.time()
        step = (t1 - self.t0) / max(n, 1)
        self.datums = [
            (
                plugin.generate_datum(image_key, self.t0 + (i + 1) * step, {}),
                self.t0 + (i + 1) * step,
            )
            for i in range(n)
        ]

    def _frames_streamed(
        self, watch: AcquireBusyWatch, stop_cam: Callable[[], None], timeout: float
    ) -> int:
        """Stop a stream still running; the number of its frames the file plugin wrote.

        Waits (at most ``timeout``) for AcquireBusy to report the cam and, with
        WaitForPlugins, the plugins done, so the count is final.  0 when the IOC
        cannot tell (e.g. it restarted): no document may claim a frame not written.
        """
        acq = self.acquisition
        assert acq is not None
        if not acq.done:
            with watch.lock:
                if watch.pending is acq:
                    acq.request_stop(Stop.INTERRUPT)  # cut short on purpose
            stop_cam()
            try:
                acq.status.wait(timeout)
            except Exception:  # noqa: BLE001 - the count below is what matters
                pass
        try:
            baseline = acq.baselines[0]
            now = baseline.now()
        except Exception:  # noqa: BLE001
            return 0
        return max(0, min(self.num, now - baseline.captured))

    def events(self, image_key: str) -> Iterator[dict]:
        """The collected events, one per datum."""
        for datum_id, ts in self.datums or ():
            yield {
                "time": ts,
                "data": {image_key: datum_id},
                "timestamps": {image_key: ts},
                # tells databroker the value is a datum id to be filled from the file
                "filled": {image_key: False},
            }
