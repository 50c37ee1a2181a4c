"""The ADSimDetector driver: ADBase + simDetector on the ``cam1:`` records.

Acquisition runs in its own thread (simTask), never in the asyncio loop, so
the CA server stays responsive at any frame rate.  Timing uses absolute
deadlines from the frame start (exposure end = start + AcquireTime, next frame
= start + AcquirePeriod) so periods do not drift by the processing time.

State sequence per frame (simDetector.cpp simTask): Acquire -> Readout ->
(callbacks to plugins) -> Waiting (period rest) or Idle at the end of Single /
Multiple, with Acquire and AcquireBusy returning to 0; a stop gives Idle in
Continuous mode and Aborted otherwise.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from adtoolkit.ioc.driver import NDArrayDriver
from adtoolkit.ioc.ndarray import NDArray, NDAttribute, NDDimension
from adtoolkit.ioc.params import Publisher
from adtoolkit.ioc.simimages import RGB1, RGB2, RGB3, SimImageGenerator, extract_region

# ADStatus values (DetectorState_RBV)
IDLE, ACQUIRE, READOUT, CORRECT, SAVING, ABORTING, ERROR, WAITING = range(8)
ABORTED = 10
SINGLE, MULTIPLE, CONTINUOUS = range(3)
MIN_DELAY = 1e-5
#: TimeRemaining_RBV refresh interval during long exposures and period waits (s)
TIME_REMAINING_STEP = 0.1

#: parameters whose change requires recomputing the base image (SimResetImage)
RESET_PARAMS = frozenset(
    {
        "DATA_TYPE",
        "COLOR_MODE",
        "SIM_MODE",
        "GAIN",
        "SIM_PEAK_START_X",
        "SIM_PEAK_START_Y",
        "SIM_PEAK_NUM_X",
        "SIM_PEAK_NUM_Y",
        "SIM_PEAK_STEP_X",
        "SIM_PEAK_STEP_Y",
        "SIM_PEAK_WIDTH_X",
        "SIM_PEAK_WIDTH_Y",
    }
)


class SimDetector(NDArrayDriver):
    """simDetector: computes images and calls the plugins back with them."""

    templates = ("NDArrayBase", "ADBase", "simDetector")

    def __init__(
        self,
        port_name: str,
        publisher: Publisher,
        max_size_x: int = 1024,
        max_size_y: int = 1024,
        data_type: int = 1,
        seed: int | None = None,
    ) -> None:
        super().__init__(port_name, publisher)
        # simDetector constructor values: they override the templates' VAL
        self.defaults = {
            "MANUFACTURER": "Simulated detector",
            "MODEL": "Basic simulator",
            "SERIAL_NUMBER": "No serial number",
            "FIRMWARE_VERSION": "No firmware",
            "DRIVER_VERSION": "2.11.0",
            "SDK_VERSION": "2.11.0",
            "MAX_SIZE_X": max_size_x,
            "MAX_SIZE_Y": max_size_y,
            "MIN_X": 0,
            "MIN_Y": 0,
            "BIN_X": 1,
            "BIN_Y": 1,
            "REVERSE_X": 0,
            "REVERSE_Y": 0,
            "SIZE_X": max_size_x,
            "SIZE_Y": max_size_y,
            "ARRAY_SIZE_X": max_size_x,
            "ARRAY_SIZE_Y": max_size_y,
            "ARRAY_SIZE": 0,
            "DATA_TYPE": data_type,
            "IMAGE_MODE": CONTINUOUS,
            "ACQ_TIME": 0.001,
            "ACQ_PERIOD": 0.005,
            "NIMAGES": 100,
            "RESET_IMAGE": 1,
            "SIM_GAIN_X": 1.0,
            "SIM_GAIN_Y": 1.0,
            "SIM_GAIN_RED": 1.0,
            "SIM_GAIN_GREEN": 1.0,
            "SIM_GAIN_BLUE": 1.0,
            "SIM_MODE": 0,
            "SIM_PEAK_START_X": 1,
            "SIM_PEAK_START_Y": 1,
            "SIM_PEAK_WIDTH_X": 10,
            "SIM_PEAK_WIDTH_Y": 20,
            "SIM_PEAK_NUM_X": 1,
            "SIM_PEAK_NUM_Y": 1,
            "SIM_PEAK_STEP_X": 1,
            "SIM_PEAK_STEP_Y": 1,
            "STATUS_MESSAGE": "",
            "TEMPERATURE_ACTUAL": 25.0,
        }
        self.generator = SimImageGenerator(seed)
        self._start = threading.Event()
        self._stop = threading.Event()
        self._exit = False
        self._thread = threading.Thread(
            target=self._sim_task, name=f"{port_name}-simTask", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._exit = True
        self._stop.set()
        self._start.set()
        self.shutdown()

    # -- writes -------------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        p = self.params
        if name == "ACQUIRE":
            acquiring = p.get("ACQUIRE")
            if value and not acquiring:
                p.set("STATUS_MESSAGE", "Acquiring data")
                self.set_acquire(1)
                self._stop.clear()
                self._start.set()
            elif not value and acquiring:
                p.set("STATUS_MESSAGE", "Acquisition stopped")
                self._stop.set()
                self.set_acquire(0)
            return
        super().write_param(addr, name, value)
        if name in RESET_PARAMS or name.startswith("SIM_"):
            p.set("RESET_IMAGE", 1)

    async def write_async(self, addr: int, name: str, value: Any) -> None:
        """A put to Acquire=1 in Single/Multiple mode completes when acquisition ends.

        In ADCore the Acquire bo's put-callback (``caput -c``, ophyd's put
        completion) completes only when the driver sets Acquire back to 0; in
        Continuous mode that is a stop, so there it completes at once, as with a
        plain put.  Other requests of the client's circuit are served meanwhile.
        """
        await super().write_async(addr, name, value)
        if name == "ACQUIRE" and value and self.params.get("IMAGE_MODE") != CONTINUOUS:
            await self._acquire_done()

    async def _acquire_done(self) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        param = self.params.params["ACQUIRE"]

        def listener(value: Any) -> None:
            if not value:
                loop.call_soon_threadsafe(done.set)

        param.listeners.append(listener)  # before the check: no end can slip between
        try:
            if self.params.get("ACQUIRE"):
                await done.wait()
        finally:
            param.listeners.remove(listener)

    def set_acquire(self, value: int) -> None:
        """ADAcquire with the AcquireBusy rule of asynNDArrayDriver::setIntegerParam."""
        p = self.params
        p.set("ACQUIRE", value)
        if value:
            p.set("ACQUIRE_BUSY", 1)
        elif not p.get("WAIT_FOR_PLUGINS") or self.queued == 0:
            p.set("ACQUIRE_BUSY", 0)

    def queue_emptied(self) -> None:
        if not self.params.get("ACQUIRE"):
            self.params.set("ACQUIRE_BUSY", 0)

    # -- the acquisition thread ----------------------------------------------
    def _sim_task(self) -> None:
        p = self.params
        acquire = False
        next_start = 0.0
        while not self._exit:
            if not acquire:
                self._start.wait()
                self._start.clear()
                if self._exit:
                    return
                acquire = True
                with p.lock:
                    p.set("STATUS_MESSAGE", "Acquiring data")
                    p.set("NIMAGES_COUNTER", 0)
                next_start = time.monotonic()
            start = time.monotonic()
            if start < next_start:
                start = next_start  # we woke early: keep the absolute schedule
            with p.lock:
                image_mode = p.get("IMAGE_MODE")
                acquire_time = p.get("ACQ_TIME")
                acquire_period = p.get("ACQ_PERIOD")
                p.set("STATUS", ACQUIRE)
                left = 0
                if image_mode == MULTIPLE:
                    left = max(p.get("NIMAGES") - p.get("NIMAGES_COUNTER") - 1, 0)
                end = start + acquire_time + left * max(acquire_period, acquire_time)
                self._set_time_remaining(end)
                p.call_callbacks()
            try:  # outside the lock: client writes are not held up by the computation
                image = self.compute_image()
            except Exception as exc:  # never let a bad setting kill simTask
                self.log.exception("computeImage: %s", exc)
                with p.lock:
                    p.set("STATUS", ERROR)
                    p.set("STATUS_MESSAGE", f"Error computing image: {exc}")
                    p.set("TIME_REMAINING", 0.0)
                    self._stop.set()
                    self.set_acquire(0)
                    p.call_callbacks()
                acquire = False
                continue
            delay = start + acquire_time - time.monotonic()
            # epicsEventWaitWithTimeout(MIN_DELAY) when the exposure is over: just poll
            stopped = self._wait(delay, end) if delay > 1e-4 else self._stop.is_set()
            if stopped or not p.get("ACQUIRE"):
                acquire = False
                with p.lock:
                    p.set("STATUS", IDLE if image_mode == CONTINUOUS else ABORTED)
                    p.set("TIME_REMAINING", 0.0)
                    p.call_callbacks()
                continue
            # EPICS_PV attributes loaded just now get their first values (bounded)
            # before they stamp a frame; outside the lock, client writes go on
            self.settle_attributes()
            with p.lock:
                p.set("STATUS", READOUT)
                p.call_callbacks()
                counter = p.get("ARRAY_COUNTER") + 1
                n_counter = p.get("NIMAGES_COUNTER") + 1
                num_images = p.get("NIMAGES")
                p.set("ARRAY_COUNTER", counter)
                p.set("NIMAGES_COUNTER", n_counter)
                # the array carries UniqueId and its time stamps; simDetector leaves
                # its own UniqueId/TimeStamp/EpicsTS* parameters at 0 (plugins show them)
                array = self.make_array(image, counter)
                callbacks = p.get("ARRAY_CALLBACKS")
            if callbacks:
                self.do_callbacks(array)
            with p.lock:
                if image_mode == SINGLE or (image_mode == MULTIPLE and n_counter >= num_images):
                    p.set("STATUS_MESSAGE", "Waiting for acquisition")
                    p.set("STATUS", IDLE)
                    p.set("TIME_REMAINING", 0.0)
                    p.call_callbacks()
                    acquire = False
                    self.set_acquire(0)
                p.call_callbacks()
            if acquire:
                next_start = start + acquire_period
                delay = next_start - time.monotonic()
                if delay >= 0.0:
                    with p.lock:
                        p.set("STATUS", WAITING)
                        if image_mode == CONTINUOUS:
                            end = next_start
                        self._set_time_remaining(end)
                        p.call_callbacks()
                    if self._wait(delay, end) or not p.get("ACQUIRE"):
                        acquire = False
                        with p.lock:
                            p.set("STATUS", IDLE if image_mode == CONTINUOUS else ABORTED)
                            p.set("TIME_REMAINING", 0.0)
                            p.call_callbacks()
                else:
                    next_start = time.monotonic()

    def _set_time_remaining(self, end: float) -> None:
        self.params.set("TIME_REMAINING", max(end - time.monotonic(), 0.0))

    def _wait(self, delay: float, end: float) -> bool:
        """Wait ``delay`` s or until stopped (True), refreshing TimeRemaining_RBV."""
        p = self.params
        deadline = time.monotonic() + delay
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._stop.is_set()
            if self._stop.wait(min(left, TIME_REMAINING_STEP)):
                return True
            if left > TIME_REMAINING_STEP:
                with p.lock:
                    self._set_time_remaining(end)
                    p.call_callbacks()

    def compute_image(self) -> Any:
        """simDetector::computeImage: clamp the region, compute, extract it."""
        p = self.params
        g = p.get
        max_x, max_y = g("MAX_SIZE_X"), g("MAX_SIZE_Y")
        min_x = min(max(g("MIN_X"), 0), max_x - 1)
        min_y = min(max(g("MIN_Y"), 0), max_y - 1)
        size_x = min(max(g("SIZE_X"), 1), max_x - min_x)
        size_y = min(max(g("SIZE_Y"), 1), max_y - min_y)
        bin_x = min(max(g("BIN_X"), 1), size_x)
        bin_y = min(max(g("BIN_Y"), 1), size_y)
        size_x -= size_x % bin_x
        size_y -= size_y % bin_y
        p.update(
            {
                "MIN_X": min_x,
                "MIN_Y": min_y,
                "SIZE_X": size_x,
                "SIZE_Y": size_y,
                "BIN_X": bin_x,
                "BIN_Y": bin_y,
            }
        )
        color = g("COLOR_MODE")
        if color not in (0, RGB1, RGB2, RGB3):
            color = 0
        values = p.snapshot()
        values["COLOR_MODE"] = color
        raw = self.generator.compute(values, bool(g("RESET_IMAGE")))
        image = extract_region(
            raw, color, min_x, min_y, size_x, size_y, bin_x, bin_y, g("REVERSE_X"), g("REVERSE_Y")
        )
        p.set("ARRAY_SIZE", image.nbytes)
        p.set("ARRAY_SIZE_X", size_x // bin_x)
        p.set("ARRAY_SIZE_Y", size_y // bin_y)
        p.set("RESET_IMAGE", 0)
        self._region = (min_x, min_y, bin_x, bin_y, g("REVERSE_X"), g("REVERSE_Y"), color)
        return image

    def make_array(self, image: Any, unique_id: int) -> NDArray:
        min_x, min_y, bin_x, bin_y, rev_x, rev_y, color = self._region
        ny, nx = image.shape[:2] if color in (0, RGB1) else (None, None)
        if color == 0:
            dims = [NDDimension(nx, min_x, bin_x, rev_x), NDDimension(ny, min_y, bin_y, rev_y)]
        elif color == RGB1:
            dims = [
                NDDimension(3),
                NDDimension(nx, min_x, bin_x, rev_x),
                NDDimension(ny, min_y, bin_y, rev_y),
            ]
        else:
            dims = [NDDimension(n) for n in reversed(image.shape)]
        attrs = {
            "ColorMode": NDAttribute(
                "ColorMode", color, "INT32", "Color mode", "Driver", "NDAttrSourceDriver"
            )
        }
        array = NDArray.stamped(image, unique_id, color_mode=color, dims=dims, attributes=attrs)
        array.attributes.update(self.extra_attributes(array))
        return array
