"""Ready-made layouts: ADCore's default, the NeXus manual's, and NeXus from attributes.

Every layout here carries the hard link ``/entry/data/data`` ->
``/entry/instrument/detector/data``, because ophyd's AD_HDF5 handler
(area_detector_handlers) reads the frames from ``/entry/data/data``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from adtoolkit.adcore.vocabulary import AUTOMATIC_ATTRIBUTES, DRIVER_ATTRIBUTES
from adtoolkit.xml.attributesfile import Attribute, Attributes
from adtoolkit.xml.layoutfile import Dataset, Group, HardLink, Layout

#: Where ophyd's AD_HDF5 handler reads frames, and the dataset it links to.
DATA_LINK = "/entry/data/data"
DETECTOR_DATA = "/entry/instrument/detector/data"

#: asyn drvInfo strings of detector settings and identity (ADBase.template and the
#: identity records of NDArrayBase.template); SIM_* are the simDetector's own.
DETECTOR_PARAMS = frozenset(
    {
        "ACQ_TIME", "ACQ_PERIOD", "GAIN", "FRAME_TYPE", "IMAGE_MODE", "TRIGGER_MODE",
        "NEXPOSURES", "NIMAGES", "BIN_X", "BIN_Y", "MIN_X", "MIN_Y", "SIZE_X", "SIZE_Y",
        "REVERSE_X", "REVERSE_Y", "MAX_SIZE_X", "MAX_SIZE_Y", "TEMPERATURE",
        "TEMPERATURE_ACTUAL", "SHUTTER_MODE", "SHUTTER_CONTROL", "SHUTTER_OPEN_DELAY",
        "SHUTTER_CLOSE_DELAY", "READ_STATUS", "MANUFACTURER", "MODEL", "SERIAL_NUMBER",
        "FIRMWARE_VERSION", "SDK_VERSION", "DRIVER_VERSION", "DATA_TYPE", "COLOR_MODE",
    }
)  # fmt: skip
#: The same settings as cam record names (for EPICS_PV attributes reading cam PVs).
DETECTOR_RECORDS = frozenset(
    {
        "AcquireTime", "AcquirePeriod", "Gain", "FrameType", "ImageMode", "TriggerMode",
        "NumExposures", "NumImages", "BinX", "BinY", "MinX", "MinY", "SizeX", "SizeY",
        "ReverseX", "ReverseY", "MaxSizeX", "MaxSizeY", "Temperature", "TemperatureActual",
        "ShutterMode", "ShutterOpenDelay", "ShutterCloseDelay", "Manufacturer", "Model",
        "SerialNumber", "FirmwareVersion", "SDKVersion", "DriverVersion", "DataType", "ColorMode",
    }
)  # fmt: skip


def _nx(name: str, nx_class: str) -> Group:
    return Group(name, nx_class)


def _detector_data(extra_nexus_attributes: bool) -> Dataset:
    data = Dataset.detector("data")
    if extra_nexus_attributes:
        data.attr("NX_class", "SDS", "string")
    data.attr("signal", 1, "int")
    if extra_nexus_attributes:
        data.attr("target", DETECTOR_DATA, "string")
    return data


def default_layout() -> Layout:
    """ADCore's built-in layout (``LayoutXML::DEFAULT_LAYOUT``): :meth:`Layout.default`."""
    return Layout.default()


def nexus_layout(as_published: bool = False) -> Layout:
    """The NeXus layout of the NeXus manual (ADSimDetector's ``hdf5_layout_nexus.xml``).

    As published, ``performance/timestamp`` says ``source="ndattribute"`` without an
    ``ndattribute=``: NDFileHDF5 then never creates it and puts the timing rows in
    the ndattr_default group instead (see mrinal_001.h5).  By default we drop that
    ``source`` so the timing goes where the layout shows it; ``as_published=True``
    gives the file exactly as published.
    """
    detector = _nx("detector", "NXdetector").add(
        _detector_data(extra_nexus_attributes=True),
        _nx("NDAttributes", "NXcollection").add(Dataset.from_ndattribute("ColorMode")),
    )
    timestamp = Dataset("timestamp", source="ndattribute" if as_published else None)
    instrument = _nx("instrument", "NXinstrument").add(
        detector,
        Group("NDAttributes", "NXcollection", ndattr_default=True),
        Group("performance").add(timestamp),
    )
    entry = _nx("entry", "NXentry").add(
        instrument,
        _nx("data", "NXdata").add(HardLink("data", DETECTOR_DATA)),
    )
    return Layout().add(entry)


def is_detector_setting(attribute: Attribute) -> bool:
    """True for NDAttributes that describe the detector (they belong in NXdetector).

    PARAM attributes are judged by their drvInfo (ADBase/NDArrayBase settings and
    identity, and the simDetector's SIM_* parameters); EPICS_PV attributes by the
    cam record they read (``...:AcquireTime``, ``...:Model_RBV``...).
    """
    if attribute.type == "PARAM":
        return attribute.source in DETECTOR_PARAMS or attribute.source.startswith("SIM_")
    if attribute.type == "EPICS_PV":
        record = attribute.source.rsplit(":", 1)[-1].split(".", 1)[0]
        record = record.removesuffix("_RBV")
        return record in DETECTOR_RECORDS
    return False


def nexus_layout_from_attributes(
    attributes: Attributes | Iterable[Attribute],
    placement: Mapping[str, str] | None = None,
    classify: Callable[[Attribute], bool] = is_detector_setting,
) -> Layout:
    """A NeXus layout with every NDAttribute of ``attributes`` at its NeXus place.

    Detector settings (see :func:`is_detector_setting`, or ``classify``) become
    datasets of ``/entry/instrument/detector``; the rest go to the NXcollection
    ``/entry/instrument/NDAttributes``, which is also the ndattr_default group that
    catches attributes added at run time (NDArray*, plugin attributes).
    ``placement`` overrides per name with ``"detector"`` or ``"collection"``.
    The driver's ColorMode goes with the detector settings.
    """
    placement = dict(placement or {})
    for name, where in placement.items():
        if where not in ("detector", "collection"):
            raise ValueError(
                f"placement of {name!r} must be 'detector' or 'collection', not {where!r}"
            )
    detector = _nx("detector", "NXdetector").add(_detector_data(extra_nexus_attributes=True))
    collection = Group("NDAttributes", "NXcollection", ndattr_default=True)
    seen: set[str] = set()
    placed: dict[int, tuple[Group, list[Dataset]]] = {}
    for attribute in attributes:
        if attribute.name in seen:
            raise ValueError(f"attribute {attribute.name!r} appears twice")
        seen.add(attribute.name)
        where = placement.get(attribute.name) or (
            "detector" if classify(attribute) else "collection"
        )
        target = detector if where == "detector" else collection
        if where == "detector" and attribute.name == "data":
            raise ValueError("attribute 'data' clashes with detector/data (the frames)")
        placed.setdefault(id(target), (target, []))[1].append(
            Dataset.from_ndattribute(attribute.name)
        )
    for target, datasets in placed.values():
        target.add(*datasets)
    for name in DRIVER_ATTRIBUTES:
        if name not in seen:
            where = placement.get(name, "detector")
            (detector if where == "detector" else collection).add(Dataset.from_ndattribute(name))
    for name in AUTOMATIC_ATTRIBUTES:  # explicit placement only when asked for
        if name in placement and name not in seen:
            target = detector if placement[name] == "detector" else collection
            target.add(Dataset.from_ndattribute(name))
    instrument = _nx("instrument", "NXinstrument").add(
        detector,
        collection,
        Group("performance").add(Dataset("timestamp", source=None)),
    )
    entry = _nx("entry", "NXentry").add(
        instrument,
        _nx("data", "NXdata").add(HardLink("data", DETECTOR_DATA)),
    )
    return Layout().add(entry)
