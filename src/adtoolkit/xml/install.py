"""Put a generated attributes file on a cam/plugin and a layout on an HDF5 plugin.

Two ways to hand a file to the IOC:

- **file**: write it (atomically) into ``local_dir``, the workstation's view of a
  directory the IOC sees as ``ioc_dir``, and put the IOC-side path in the PV.
  With ``inline=False`` and no directories, an ophyd file plugin's
  ``write_path_template``/``read_path_template`` are used;
- **inline**: put the XML text itself in the PV.  The IOC recognises inline XML by
  ``<Attributes>`` in NDAttributesFile and by ``<?xml`` in XMLFileName, so the text
  is compacted to one line; it must fit the waveform (NDAttributesFile is 256
  characters unless the IOC was built with a larger ``XMLSIZE``, XMLFileName 2048).

Then the IOC's verdict is read back: NDAttributesStatus (0 = OK, 1 = file not
found, 2 = XML syntax error, 3 = macro error) and XMLValid_RBV/XMLErrorMsg_RBV;
a refusal raises :class:`InstallError` with the IOC's message.

Signals are duck-typed (anything with ``set``/``put`` and ``get``), given either
as a device carrying ophyd's attribute names (``nd_attributes_file``,
``nd_attributes_status``, ``nd_attributes_macros``, ``xml_file_name``,
``xml_valid``, ``xml_error_msg``) or as a mapping of those names to signals, so
this module never imports the device classes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from adtoolkit.adcore.macros import MacroError, expands, undefined_macros
from adtoolkit.adcore.vocabulary import STATUS_STRINGS
from adtoolkit.xml.attributesfile import Attributes
from adtoolkit.xml.layoutfile import Layout
from adtoolkit.xml.validator import ERROR, ValidationError, validate

#: Default waveform sizes (NDArrayBase.template / NDFileHDF5.template ``XMLSIZE``).
NDATTRIBUTES_FILE_SIZE = 256
XML_FILE_NAME_SIZE = 2048

ATTRIBUTES_STATUS = dict(enumerate(STATUS_STRINGS))


class InstallError(RuntimeError):
    """The IOC refused the file, or it could not be handed over."""


@dataclass(frozen=True)
class Installed:
    """What was put in the PV, and where the file was written (file mode)."""

    pv_value: str
    local_path: Path | None = None


def _signal(target: Any, name: str, required: bool = True):
    if target is None:
        signal = None
    elif isinstance(target, Mapping):
        signal = target.get(name)
    else:
        signal = getattr(target, name, None)
    if signal is None and required:
        raise InstallError(f"{getattr(target, 'name', target)!r} has no signal {name!r}")
    return signal


def _signal_name(signal: Any) -> str:
    return getattr(signal, "pvname", None) or getattr(signal, "name", None) or repr(signal)


def _put(signal: Any, value: str, timeout: float) -> None:
    """Write and wait until the value reads back (ophyd ``set``), else a plain put."""
    if hasattr(signal, "set"):
        status = signal.set(value)
        if hasattr(status, "wait"):
            try:
                status.wait(timeout)
            except Exception as exc:  # ophyd raises WaitTimeoutError / StatusTimeoutError
                raise InstallError(
                    f"writing {_signal_name(signal)} did not complete: {exc}"
                ) from exc
        return
    signal.put(value)


def _get(signal: Any) -> Any:
    """A fresh read (not the cached monitor value) where the signal supports it."""
    try:
        return signal.get(use_monitor=False)
    except TypeError:
        return signal.get()


def _settled(signal: Any, settle: float) -> Any:
    """Read ``signal`` after the IOC had the chance to post a new value.

    asyn posts a status only when it changes, so an unchanged OK sends nothing;
    we wait for a change event for at most ``settle`` seconds, then read.
    """
    if settle > 0 and hasattr(signal, "subscribe"):
        import threading

        changed = threading.Event()
        token = signal.subscribe(lambda *a, **k: changed.set(), run=False)
        try:
            changed.wait(settle)
        finally:
            signal.unsubscribe(token)
    elif settle > 0:
        time.sleep(settle)
    return _get(signal)


def _as_int(value: Any, labels: Mapping[int, str]) -> int | None:
    if isinstance(value, str):
        for code, label in labels.items():
            if value == label:
                return code
        try:
            return int(value)
        except ValueError:
            return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _path_templates(target: Any) -> tuple[str, str] | None:
    """(IOC-side, workstation-side) directories from an ophyd file plugin's templates.

    ophyd's FileStoreBase names them write_path_template (as the IOC writes) and
    read_path_template (as the workstation reads); strftime codes are expanded.
    """
    from datetime import datetime

    try:
        write = getattr(target, "write_path_template", None)
        read = getattr(target, "read_path_template", None)
    except Exception:  # ophyd raises when a template is not configured
        return None
    if not write or not read or isinstance(target, Mapping):
        return None
    now = datetime.now()
    return now.strftime(str(write)), now.strftime(str(read))


def _ioc_path(ioc_dir: str, filename: str) -> str:
    if "\\" in ioc_dir or (len(ioc_dir) > 1 and ioc_dir[1] == ":"):
        return str(PureWindowsPath(ioc_dir) / filename)
    return str(PurePosixPath(ioc_dir) / filename)


def _compact(xml: str, keep_declaration: bool) -> str:
    lines = [line.strip() for line in xml.splitlines()]
    if not keep_declaration and lines and lines[0].startswith("<?xml"):
        lines = lines[1:]
    return "".join(lines)


class InstallWarning(UserWarning):
    """A validator warning about a file being installed (it is installed anyway)."""


def _check_macros(attributes: Attributes, macros: str) -> None:
    """The IOC sets NDAttributesStatus=3 for a $(NAME) that NDAttributesMacros lacks."""
    try:
        missing = undefined_macros(attributes.to_xml(), macros)
    except MacroError as exc:
        raise InstallError(
            f"NDAttributesMacros {macros!r}: {exc} (the IOC would report 'Macro substitution error')"
        ) from None
    if missing:
        raise InstallError(
            f"macro(s) {', '.join(missing)} used by the attributes but not defined in "
            f"NDAttributesMacros {macros!r} (the IOC would report 'Macro substitution error')"
        )


def _check(
    model: Attributes | Layout, attributes: Iterable[str] | None, macros: str | None = None
) -> None:
    """Refuse files with errors; show warnings (and, for layouts, whether ophyd can read
    the frames from /entry/data/data) as Python warnings."""
    import warnings

    problems = validate(model, attributes, ophyd=isinstance(model, Layout))
    errors = [p for p in problems if p.severity == ERROR]
    if errors:
        raise ValidationError(errors)
    if macros is not None and expands(macros) and isinstance(model, Attributes):
        _check_macros(model, macros)
        problems = [p for p in problems if "holds a macro" not in p.message]
    for problem in problems:
        warnings.warn(str(problem), InstallWarning, stacklevel=3)


def _value_for(
    model: Attributes | Layout,
    *,
    inline: bool | None,
    ioc_dir: str | None,
    local_dir: str | Path | None,
    filename: str,
    max_inline: int,
    what: str,
    templates: tuple[str, str] | None = None,
) -> Installed:
    if inline is None:
        inline = ioc_dir is None
    if inline:
        if isinstance(model, Attributes) and model.extra:
            model = Attributes(model.attributes)  # the IOC looks for the literal "<Attributes>"
        text = _compact(model.to_xml(), keep_declaration=isinstance(model, Layout))
        if len(text) + 1 > max_inline:
            raise InstallError(
                f"inline {what} is {len(text)} characters; the PV holds {max_inline - 1}. "
                "Give ioc_dir/local_dir to install it as a file instead."
            )
        return Installed(text)
    if ioc_dir is None and local_dir is None and templates is not None:
        ioc_dir, local_dir = templates
    if ioc_dir is None or local_dir is None:
        raise InstallError(
            f"installing {what} as a file needs both ioc_dir and local_dir "
            "(or a device with write_path_template and read_path_template)"
        )
    local = Path(local_dir)
    if not local.is_dir():
        raise InstallError(
            f"local_dir {local} is not a directory (the workstation view of {ioc_dir})"
        )
    path = local / filename
    model.write(path)
    return Installed(_ioc_path(str(ioc_dir), filename), path)


def install_attributes(
    attributes: Attributes,
    target: Any,
    *,
    inline: bool | None = None,
    ioc_dir: str | None = None,
    local_dir: str | Path | None = None,
    filename: str = "attributes.xml",
    macros: str | None = None,
    max_inline: int = NDATTRIBUTES_FILE_SIZE,
    timeout: float = 10.0,
    settle: float = 0.5,
) -> Installed:
    """Install ``attributes`` on a cam or plugin (``target``) and check NDAttributesStatus.

    ``macros`` (e.g. ``"CAMERA=13SIM1:cam1:"``) goes to NDAttributesMacros first.
    Without an ``nd_attributes_status`` signal (ophyd's CamBase has none) the
    IOC's verdict cannot be read and only the write is checked.
    """
    _check(attributes, None, macros)
    file_signal = _signal(target, "nd_attributes_file")
    status_signal = _signal(target, "nd_attributes_status", required=False)
    if macros is not None:
        _put(_signal(target, "nd_attributes_macros"), macros, timeout)
    installed = _value_for(
        attributes,
        inline=inline,
        ioc_dir=ioc_dir,
        local_dir=local_dir,
        filename=filename,
        max_inline=max_inline,
        what="attributes XML",
        templates=_path_templates(target),
    )
    _put(file_signal, installed.pv_value, timeout)
    if status_signal is not None:
        raw = _settled(status_signal, settle)
        code = _as_int(raw, ATTRIBUTES_STATUS)
        if code != 0:
            label = ATTRIBUTES_STATUS.get(code, str(raw))
            where = installed.local_path or "inline XML"
            raise InstallError(
                f"{_signal_name(file_signal)} refused {where}: NDAttributesStatus={label!r}"
                + (" (is ioc_dir the IOC's view of local_dir?)" if code == 1 else "")
            )
    return installed


def install_layout(
    layout: Layout,
    target: Any,
    *,
    attributes: Attributes | Iterable[str] | None = None,
    inline: bool | None = None,
    ioc_dir: str | None = None,
    local_dir: str | Path | None = None,
    filename: str = "layout.xml",
    max_inline: int = XML_FILE_NAME_SIZE,
    timeout: float = 10.0,
    settle: float = 0.5,
) -> Installed:
    """Install ``layout`` on an HDF5 plugin (``target``) and check XMLValid_RBV.

    ``attributes`` (a model or names) cross-checks the layout's ``ndattribute=``.
    """
    names = attributes.names if isinstance(attributes, Attributes) else attributes
    _check(layout, names)
    name_signal = _signal(target, "xml_file_name")
    valid_signal = _signal(target, "xml_valid", required=False)
    message_signal = _signal(target, "xml_error_msg", required=False)
    installed = _value_for(
        layout,
        inline=inline,
        ioc_dir=ioc_dir,
        local_dir=local_dir,
        filename=filename,
        max_inline=max_inline,
        what="layout XML",
        templates=_path_templates(target),
    )
    _put(name_signal, installed.pv_value, timeout)
    if valid_signal is not None:
        raw = _settled(valid_signal, settle)
        if _as_int(raw, {0: "No", 1: "Yes"}) != 1:
            message = _get(message_signal) if message_signal is not None else ""
            where = installed.local_path or "inline XML"
            raise InstallError(
                f"{_signal_name(name_signal)} refused {where}: XMLValid_RBV={raw!r}, "
                f"XMLErrorMsg_RBV={message!r}"
            )
    return installed


def install(
    *,
    attributes: Attributes | None = None,
    on: Any = None,
    layout: Layout | None = None,
    hdf5: Any = None,
    inline: bool | None = None,
    ioc_dir: str | None = None,
    local_dir: str | Path | None = None,
    attributes_filename: str = "attributes.xml",
    layout_filename: str = "layout.xml",
    macros: str | None = None,
    other_attributes: Iterable[str] = (),
    timeout: float = 10.0,
    settle: float = 0.5,
) -> dict[str, Installed]:
    """Install an attributes file on ``on`` (cam or plugin) and/or a layout on ``hdf5``.

    Both are validated first (the layout against the attributes, when both are
    given, plus ``other_attributes``: names attached elsewhere, e.g. by the
    plugin's own attributes file), so nothing is sent unless both are sound.
    """
    if attributes is not None and on is None:
        raise InstallError("attributes given but no cam/plugin to install them on (on=...)")
    if layout is not None and hdf5 is None:
        raise InstallError("layout given but no HDF5 plugin to install it on (hdf5=...)")
    if attributes is not None:
        _check(attributes, None, macros)
    names = None
    if attributes is not None:
        names = [*attributes.names, *other_attributes]
    if layout is not None:
        _check(layout, names)
    done: dict[str, Installed] = {}
    common = dict(
        inline=inline, ioc_dir=ioc_dir, local_dir=local_dir, timeout=timeout, settle=settle
    )
    if attributes is not None:
        done["attributes"] = install_attributes(
            attributes, on, filename=attributes_filename, macros=macros, **common
        )
    if layout is not None:
        done["layout"] = install_layout(
            layout, hdf5, attributes=names, filename=layout_filename, **common
        )
    return done
