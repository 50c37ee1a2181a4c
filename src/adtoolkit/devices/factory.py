"""``make_detector``: a ready, connected, validated detector in one call.

    det = make_detector("13SIM1:", name="det", plugins=("hdf1", "image1"),
                        write_path="/data/%Y/%m/%d/", read_path="/mnt/data/%Y/%m/%d/")
    RE(bp.count([det], num=3))

Every argument is checked before a PV is created.  The class is built from the
requested plugins (names like ``hdf1``, ``image1``, ``Stats2``: kind + number, suffix
by ADCore convention), the signals in use are connected concurrently (the others stay
lazy, as in ophyd: they connect on first access; ``connect="all"`` connects every
one), the plugin types and asyn ports are validated, and kinds are set so ``read()``
holds the image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ophyd import Component as Cpt

from ..paths import PathTemplates
from .batchread import read_many
from .cam import ADBaseCam, SimDetectorCam
from .connect import connect_all, connect_used
from .detector import AreaDetector, _image_in_read
from .errors import ConfigurationError, PortError, UnknownPluginError
from .filestore import DEFAULT_FILE_TEMPLATE, HDF5FileStore
from .plugins import PLUGIN_TYPES, ImagePlugin, JPEGPlugin, ROIPlugin, StatsPlugin, TIFFPlugin

__all__ = ["make_detector", "PLUGIN_KINDS", "CAM_CLASSES", "parse_plugin_name"]

#: plugin kind -> (class, suffix format); suffixes are ADCore's customary ones
PLUGIN_KINDS: dict[str, tuple[type, str]] = {
    "hdf": (HDF5FileStore, "HDF{n}:"),
    "image": (ImagePlugin, "image{n}:"),
    "tiff": (TIFFPlugin, "TIFF{n}:"),
    "jpeg": (JPEGPlugin, "JPEG{n}:"),
    "stats": (StatsPlugin, "Stats{n}:"),
    "roi": (ROIPlugin, "ROI{n}:"),
}

CAM_CLASSES: dict[str, type] = {"sim": SimDetectorCam, "base": ADBaseCam}

_NAME_RE = re.compile(r"^([A-Za-z]+)(\d+)$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_:\-.{}\[\]<>;]+$")


def parse_plugin_name(name: object) -> tuple[str, type, str]:
    """``"hdf1"`` -> (attribute ``hdf1``, HDF5FileStore, suffix ``HDF1:``)."""
    if not isinstance(name, str):
        raise UnknownPluginError(f"plugin names are strings like 'hdf1', not {name!r}")
    m = _NAME_RE.match(name)
    kind = m.group(1).lower() if m else None
    if not m or kind not in PLUGIN_KINDS:
        raise UnknownPluginError(
            f"unknown plugin {name!r}; known: "
            + ", ".join(f"{k}N" for k in PLUGIN_KINDS)
            + " (N = 1, 2, ...)"
        )
    cls, fmt = PLUGIN_KINDS[kind]
    n = int(m.group(2))
    return f"{kind}{n}", cls, fmt.format(n=n)


def _normalise_plugins(plugins: object) -> dict[str, tuple[type, str]]:
    if plugins is None:
        return {}
    if isinstance(plugins, str):
        plugins = (plugins,)
    out: dict[str, tuple[type, str]] = {}
    if isinstance(plugins, Mapping):
        items = list(plugins.items())
    elif isinstance(plugins, Iterable):
        items = [(p, None) for p in plugins]
    else:
        raise ConfigurationError(f"plugins must be a name or a list of names, not {plugins!r}")
    for name, suffix in items:
        attr, cls, default_suffix = parse_plugin_name(name)
        if suffix is not None and (not isinstance(suffix, str) or not suffix):
            raise ConfigurationError(f"suffix of plugin {name!r} must be a str, not {suffix!r}")
        if attr in out:
            raise ConfigurationError(f"plugin {name!r} given twice")
        out[attr] = (cls, suffix or default_suffix)
    return out


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigurationError(message)


def make_detector(
    prefix: str,
    name: str = "det",
    plugins: Iterable[str] | Mapping[str, str] | str | None = ("hdf1", "image1"),
    *,
    write_path: str | None = None,
    read_path: str | None = None,
    path_semantics: str | None = None,
    cam: str = "sim",
    cam_suffix: str = "cam1:",
    naming: str = "uuid",
    lazy_open: bool = False,
    file_template: str = DEFAULT_FILE_TEMPLATE,
    frames_per_point: int = 1,
    attributes: Any = None,
    layout: Any = None,
    connect: bool | str = True,
    connection_timeout: float = 5.0,
    validate_ports: bool = True,
) -> AreaDetector:
    """Build, connect and validate an area detector (see the module docstring).

    ``write_path`` is the IOC-side directory template (strftime codes allowed),
    ``read_path`` the same directory as this workstation sees it (default: the same).
    ``naming`` is ``"uuid"`` (ophyd style) or ``"epics"`` (FileName/FileNumber from
    the IOC).  ``attributes`` / ``layout`` are NDAttributes / HDF5 layout XML,
    installed through :func:`adtoolkit.xml.install`.

    ``connect``: ``True`` (or ``"used"``) connects, concurrently, the signals that
    staging, triggering, reading and the port checks use, and leaves the other records
    lazy (they connect when first accessed, as ophyd's area-detector components do);
    ``"all"`` connects every signal up front; ``False`` connects nothing (and skips
    the checks and the XML installation).
    """
    # ---- validate everything before any PV exists --------------------------------
    _check(
        isinstance(prefix, str) and bool(prefix) and _PREFIX_RE.match(prefix) is not None,
        f"prefix must be a non-empty PV prefix like '13SIM1:', not {prefix!r}",
    )
    _check(
        isinstance(name, str) and name.isidentifier(),
        f"name must be a Python identifier (it prefixes data keys), not {name!r}",
    )
    _check(cam in CAM_CLASSES, f"cam must be one of {sorted(CAM_CLASSES)}, not {cam!r}")
    _check(isinstance(cam_suffix, str) and bool(cam_suffix), f"bad cam_suffix {cam_suffix!r}")
    _check(naming in ("uuid", "epics"), f"naming must be 'uuid' or 'epics', not {naming!r}")
    _check(isinstance(lazy_open, bool), f"lazy_open must be True or False, not {lazy_open!r}")
    _check(
        isinstance(frames_per_point, int)
        and not isinstance(frames_per_point, bool)
        and frames_per_point >= 1,
        f"frames_per_point must be an int >= 1, not {frames_per_point!r}",
    )
    _check(
        isinstance(connection_timeout, (int, float)) and connection_timeout > 0,
        f"connection_timeout must be a positive number of seconds, not {connection_timeout!r}",
    )
    _check(
        isinstance(connect, bool) or (isinstance(connect, str) and connect in ("used", "all")),
        f"connect must be True, False, 'used' or 'all', not {connect!r}",
    )
    spec = _normalise_plugins(plugins)
    has_files = any(issubclass(c, HDF5FileStore) for c, _ in spec.values())
    paths = None
    if write_path is not None or read_path is not None:
        _check(write_path is not None, "read_path given without write_path")
        paths = PathTemplates(write_path, read_path, path_semantics)  # type: ignore[arg-type]
    elif has_files:
        raise ConfigurationError(
            "an HDF5 plugin needs write_path= (the directory template as the IOC sees it)"
        )
    xml_install = None
    if attributes is not None or layout is not None:
        xml_install = _xml_installer(attributes, layout)
    if has_files:
        from .filestore import _check_file_template

        _check_file_template(file_template)

    # ---- build -------------------------------------------------------------------
    body: dict[str, Any] = {"cam": Cpt(CAM_CLASSES[cam], cam_suffix)}
    for attr, (cls, suffix) in spec.items():
        body[attr] = Cpt(cls, suffix)
    cls_name = "".join(p.capitalize() for p in name.split("_")) + "Detector"
    det_cls = type(cls_name, (AreaDetector,), body)
    det = det_cls(prefix, name=name, frames_per_point=frames_per_point)
    det.lazy_connection_timeout = float(connection_timeout)
    for attr in spec:
        plugin = getattr(det, attr)
        # the detector stages cam.array_callbacks once; plugins need not repeat it
        plugin.stage_sigs.pop("parent.cam.array_callbacks", None)
        if isinstance(plugin, HDF5FileStore):
            plugin.configure_files(
                paths,  # type: ignore[arg-type]
                naming=naming,  # type: ignore[arg-type]
                lazy_open=lazy_open,
                file_template=file_template,
            )
    _image_in_read(det)

    if connect:
        if connect == "all":
            connect_all(det, timeout=connection_timeout)
        else:
            connect_used(det, timeout=connection_timeout)
        check_plugin_types(det)
        if validate_ports:
            det.validate_asyn_ports()
        if xml_install is not None:
            _install_xml(xml_install, det, attributes, layout, paths)
    return det


def _xml_installer(attributes: Any, layout: Any):
    """The XML helper's ``install`` function, after checking the argument types."""
    try:
        from ..xml import Attributes, Layout  # type: ignore[attr-defined]
        from ..xml import install as install_module  # type: ignore[attr-defined]
    except ImportError:
        install_module = None
    func = getattr(install_module, "install", install_module)
    if func is None or not callable(func):
        raise NotImplementedError(
            "installing attributes/layout XML needs adtoolkit.xml.install, which is not "
            "available in this build yet"
        )
    if attributes is not None and not isinstance(attributes, Attributes):
        raise ConfigurationError(
            f"attributes must be an adtoolkit.xml.Attributes, not {type(attributes).__name__}"
        )
    if layout is not None and not isinstance(layout, Layout):
        raise ConfigurationError(
            f"layout must be an adtoolkit.xml.Layout, not {type(layout).__name__}"
        )
    return func


def _install_xml(func, det: AreaDetector, attributes: Any, layout: Any, paths) -> None:
    """Attributes on the cam, layout on the (first) HDF5 plugin, files next to the data."""
    hdf = det.file_plugins()[0] if det.file_plugins() else None
    if layout is not None and hdf is None:
        raise ConfigurationError("layout= needs an HDF5 plugin (e.g. plugins=('hdf1',))")
    kwargs: dict[str, Any] = {}
    if paths is not None:
        # the data directory without its dated part, where it exists already (the
        # dated directory may not yet); else the mount point
        ioc_dir, local_dir = paths.fixed_dirs
        if not os.path.isdir(local_dir):
            ioc_dir, local_dir = paths.write_root, paths.read_root
        kwargs.update(ioc_dir=ioc_dir, local_dir=local_dir)
    func(
        attributes=attributes,
        on=det.cam if attributes is not None else None,
        layout=layout,
        hdf5=hdf if layout is not None else None,
        **kwargs,
    )


def check_plugin_types(det: AreaDetector) -> None:
    """Each plugin's PluginType_RBV must match its class (a wrong suffix is caught)."""
    checks = []
    for attr in det._sub_devices:
        dev = getattr(det, attr)
        for cls, ptype in PLUGIN_TYPES.items():
            if isinstance(dev, cls):
                checks.append((attr, dev, ptype))
                break
    types = read_many([dev.plugin_type for _, dev, _ in checks])  # one round trip
    for (attr, dev, ptype), got in zip(checks, types, strict=True):
        if not str(got).startswith(ptype):
            raise ConfigurationError(
                f"{dev.prefix}PluginType_RBV is {got!r}, but {attr} was built as "
                f"{ptype}; check the plugin name/suffix"
            )


def _ports(det: AreaDetector) -> tuple[dict[str, str], dict[str, str]]:
    """(port name -> attribute, plugin attribute -> its input port)."""
    plugins = [
        attr
        for attr in det._sub_devices
        if attr != "cam" and hasattr(getattr(det, attr), "nd_array_port")
    ]
    sigs = [det.cam.port_name]
    for attr in plugins:
        sigs += [getattr(det, attr).port_name, getattr(det, attr).nd_array_port]
    values = read_many(sigs)  # one round trip
    provides = {values[0]: "cam"}
    inputs = {}
    for i, attr in enumerate(plugins):
        provides[values[1 + 2 * i]] = attr
        inputs[attr] = values[2 + 2 * i]
    return provides, inputs


def missing_plugins(det: AreaDetector) -> list[str]:
    """Input ports used by our plugins that no component of ``det`` provides."""
    provides, inputs = _ports(det)
    return sorted({port for port in inputs.values() if port not in provides})


def validate_asyn_ports(det: AreaDetector) -> None:
    provides, inputs = _ports(det)
    bad = {attr: port for attr, port in inputs.items() if port not in provides}
    if bad:
        detail = "; ".join(
            f"{attr} ({getattr(det, attr).prefix}NDArrayPort) = {port!r}"
            for attr, port in sorted(bad.items())
        )
        raise PortError(
            f"{det.name}: plugin input port(s) not provided by this detector: {detail}. "
            f"Known ports: {sorted(provides)}. Add the source plugin or set NDArrayPort."
        )


AreaDetector.missing_plugins = missing_plugins  # type: ignore[method-assign]
AreaDetector.validate_asyn_ports = validate_asyn_ports  # type: ignore[method-assign]
