"""Cam classes for current ADCore (R3-4 and later).

They subclass ophyd's cam classes, so every existing ophyd attribute name keeps
working, and then:

* add the records ADCore gained since ophyd's classes were written -- above all
  ``AcquireBusy`` (a busy record that clears only when the acquisition *and*, with
  ``WaitForPlugins=Yes``, every plugin has finished) and ``WaitForPlugins``;
* remove what current ADCore templates no longer have (``PoolMaxBuffers``) or what is
  a record field rather than a record (``DataType_RBV.DISA``), so connecting never
  waits for PVs that a real IOC does not serve.

Staging is :class:`~adtoolkit.devices.staging.FastStaging`'s, like the plugins': a
user's ``cam.stage_sigs`` join the detector's pipelined writes and are all restored.
ophyd's ``ADBase.stage`` would also re-validate the asyn ports of the cam alone, a
check that cannot fail (one port) but costs CA reads on every stage; the detector's
ports are validated by ``make_detector``.

Attribute names follow the EPICS record names (``AcquireBusy`` -> ``acquire_busy``).
"""

from __future__ import annotations

from ophyd import EpicsSignal, EpicsSignalRO
from ophyd.areadetector import cam as ophyd_cam
from ophyd.areadetector.base import ADComponent as ADCpt
from ophyd.areadetector.base import EpicsSignalWithRBV as SignalWithRBV

from . import priming
from .staging import FastStaging

__all__ = ["ADBaseCam", "SimDetectorCam"]


class ADBaseCam(FastStaging, ophyd_cam.CamBase):
    """Records of ADBase.template + NDArrayBase.template (ADCore >= 3.4)."""

    _adcore_min = (3, 4)

    #: signals adtoolkit reads or writes itself (port validation, priming; the
    #: detector adds its triggering ones): make_detector connects these and the
    #: stage_sigs concurrently and leaves the other records lazy
    used_signals = ("port_name", *priming.CAM_SIGNALS)

    # removed from / never in current ADCore templates
    pool_max_buffers = None
    data_type_disabled = None

    # --- NDArrayBase.template records missing from ophyd's CamBase ---
    adcore_version = ADCpt(EpicsSignalRO, "ADCoreVersion_RBV", string=True, kind="config")
    driver_version = ADCpt(EpicsSignalRO, "DriverVersion_RBV", string=True, kind="config")
    serial_number = ADCpt(EpicsSignalRO, "SerialNumber_RBV", string=True)
    sdk_version = ADCpt(EpicsSignalRO, "SDKVersion_RBV", string=True)
    firmware_version = ADCpt(EpicsSignalRO, "FirmwareVersion_RBV", string=True)

    acquire_busy = ADCpt(EpicsSignal, "AcquireBusy", string=True)
    acquire_busy_cb = ADCpt(EpicsSignalRO, "AcquireBusyCB", string=True)
    wait_for_plugins = ADCpt(EpicsSignal, "WaitForPlugins", string=True)

    ndimensions = ADCpt(SignalWithRBV, "NDimensions")
    dimensions = ADCpt(SignalWithRBV, "Dimensions")
    bayer_pattern = ADCpt(EpicsSignalRO, "BayerPattern_RBV")
    codec = ADCpt(EpicsSignalRO, "Codec_RBV", string=True)
    compressed_size = ADCpt(EpicsSignalRO, "CompressedSize_RBV")
    unique_id = ADCpt(EpicsSignalRO, "UniqueId_RBV")
    time_stamp = ADCpt(EpicsSignalRO, "TimeStamp_RBV")
    epics_ts_sec = ADCpt(EpicsSignalRO, "EpicsTSSec_RBV")
    epics_ts_nsec = ADCpt(EpicsSignalRO, "EpicsTSNsec_RBV")

    nd_attributes_macros = ADCpt(EpicsSignal, "NDAttributesMacros", string=True)
    nd_attributes_status = ADCpt(EpicsSignalRO, "NDAttributesStatus", string=True)

    pool_poll_stats = ADCpt(EpicsSignal, "PoolPollStats")
    empty_free_list = ADCpt(EpicsSignal, "EmptyFreeList")
    pre_alloc_buffers = ADCpt(EpicsSignal, "PreAllocBuffers")
    num_pre_alloc_buffers = ADCpt(SignalWithRBV, "NumPreAllocBuffers")
    num_queued_arrays = ADCpt(EpicsSignalRO, "NumQueuedArrays")


class SimDetectorCam(ADBaseCam, ophyd_cam.SimDetectorCam):
    """ADSimDetector's cam: ADBaseCam + simDetector.template records."""

    offset = ADCpt(SignalWithRBV, "Offset")
    x_sine_operation = ADCpt(SignalWithRBV, "XSineOperation", string=True)
    x_sine1_amplitude = ADCpt(SignalWithRBV, "XSine1Amplitude")
    x_sine1_frequency = ADCpt(SignalWithRBV, "XSine1Frequency")
    x_sine1_phase = ADCpt(SignalWithRBV, "XSine1Phase")
    x_sine2_amplitude = ADCpt(SignalWithRBV, "XSine2Amplitude")
    x_sine2_frequency = ADCpt(SignalWithRBV, "XSine2Frequency")
    x_sine2_phase = ADCpt(SignalWithRBV, "XSine2Phase")
    y_sine_operation = ADCpt(SignalWithRBV, "YSineOperation", string=True)
    y_sine1_amplitude = ADCpt(SignalWithRBV, "YSine1Amplitude")
    y_sine1_frequency = ADCpt(SignalWithRBV, "YSine1Frequency")
    y_sine1_phase = ADCpt(SignalWithRBV, "YSine1Phase")
    y_sine2_amplitude = ADCpt(SignalWithRBV, "YSine2Amplitude")
    y_sine2_frequency = ADCpt(SignalWithRBV, "YSine2Frequency")
    y_sine2_phase = ADCpt(SignalWithRBV, "YSine2Phase")
