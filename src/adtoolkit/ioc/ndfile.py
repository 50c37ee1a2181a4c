"""NDPluginFile: the file-saving machinery shared by TIFF, JPEG, netCDF and HDF5.

Follows ADCore's asynNDArrayDriver (file names, checkPath, createFilePath) and
NDPluginFile.cpp (Single / Capture / Stream modes, Capture and WriteFile busy
records, LazyOpen, TempSuffix, isFrameValid, WriteStatus/WriteMessage texts), both
in ADCore's ADApp (ADSrc/asynNDArrayDriver.cpp, pluginSrc/NDPluginFile.cpp).

The format itself is a *writer* object plugged in by the concrete plugin::

    writer.open(path, array, params, num_capture, mode)
    writer.write(array)
    writer.flush()
    writer.close() -> dict of readbacks (record name without _RBV -> value)

``params`` is a read-only snapshot of the plugin's parameters keyed by record
name (``"Compression"``, ``"ZLevel"``, ``"XMLFileName"`` ...).

Write-root confinement (``adtoolkit ioc --write-root DIR``): a FilePath outside
DIR, after resolving ``..`` and symlinks, reads FilePathExists_RBV=No with a
WriteMessage saying why, and nothing is ever written outside DIR.  The check is
made again on the *files* themselves (the final name and the TempSuffix name)
before any writer opens them and before the rename at close: a name that is a
symlink is refused, and the file is created here with O_NOFOLLOW, so that no
format writer (h5py, tifffile, Pillow) ever follows a link out of DIR.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver

SINGLE, CAPTURE, STREAM = 0, 1, 2
MODE_NAMES = ("Single", "Capture", "Stream")


class Writer(Protocol):
    """What a file format provides to NDFilePlugin."""

    #: can one file hold several arrays (NDPluginFile supportsMultipleArrays)?
    multiple_arrays: bool

    def open(self, path: str, array: NDArray, params: Any, num_capture: int, mode: str) -> None: ...

    def write(self, array: NDArray) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> dict: ...


class FileError(Exception):
    """A failure reported through WriteStatus=Write error and WriteMessage."""


def format_file_name(template: str, path: str, name: str, number: int) -> str:
    """``epicsSnprintf(template, path, name, number)``: unused arguments are ignored
    as in C, so ``"%s%s.h5"`` works."""
    args: tuple[Any, ...] = (path, name, number)
    last: Exception | None = None
    for n in (3, 2, 1, 0):
        try:
            return template % args[:n]
        except TypeError as exc:
            last = exc
            continue
        except (ValueError, KeyError) as exc:
            raise FileError(f"invalid FileTemplate {template!r}: {exc}") from None
    raise FileError(f"invalid FileTemplate {template!r}: {last}")


def create_file_path(path: str, depth: int) -> None:
    """asynNDArrayDriver::createFilePath: create the directories of ``path``.

    depth > 0: the first ``depth`` components must exist, deeper ones are created;
    depth < 0: at most ``-depth`` trailing components are created (never the first);
    depth 0: nothing is created.
    """
    if depth == 0:
        return
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p]
    if depth < 0:
        depth = max(len(parts) + depth, 1)
    for i in range(depth, len(parts)):
        partial = ("/" if absolute else "") + "/".join(parts[: i + 1])
        if not os.path.isdir(partial):
            os.mkdir(partial, 0o777)


class NDFilePlugin(PluginDriver):
    """Base of the file plugins: file naming, modes, capture buffer, busy records."""

    plugin_type = "NDPluginFile"
    templates = ("NDFile", "NDFileCompat")
    #: FileFormat / FileFormat_RBV boot value
    file_format = 0

    def __init__(
        self, *args: Any, write_root: str | os.PathLike | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.write_root = Path(os.path.realpath(write_root)) if write_root else None
        self.writer: Writer | None = None
        self._open = False
        self._open_path = ""
        self._final_path = ""
        self._capture_buffer: list[NDArray] = []
        self._frame_shape: tuple | None = None
        self._lazy = False
        #: record name (without _RBV) -> drvInfo, for writer params and readbacks
        self.record_params: dict[str, str] = {}

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"write_root": ioc.write_root}

    #: does the format hold several arrays per file (supportsMultipleArrays)?
    multiple_arrays = True

    def make_writer(self) -> Writer:
        """A new writer for one file (override)."""
        raise FileError(f"{self.plugin_type}: writing files is not simulated")

    def bind(self, group: Any) -> None:
        super().bind(group)
        from adtoolkit.ioc.pvgroups import iter_records

        for _, channel in iter_records(group):
            spec = channel._adt_spec
            if spec is not None and spec.drvinfo:
                name = spec.name[:-4] if spec.name.endswith("_RBV") else spec.name
                self.record_params.setdefault(name, spec.drvinfo)

    def init_params(self) -> None:
        super().init_params()
        # asynNDArrayDriver constructor values override the templates' VAL (asyn output
        # records read the driver value at iocInit)
        self.params.update(
            {
                "FILE_FORMAT": self.file_format,
                "FILE_PATH_EXISTS": 0,
                "FILE_NUMBER": 0,
                "AUTO_INCREMENT": 0,
                "CREATE_DIR": 0,
            }
        )

    # -- writer interface helpers -------------------------------------------
    def writer_params(self) -> MappingProxyType:
        """Read-only snapshot keyed by record name (``"ZLevel"``, ``"Compression"``...)."""
        values = self.params.snapshot()
        return MappingProxyType(
            {rec: values[drv] for rec, drv in self.record_params.items() if drv in values}
        )

    def on_readback(self, name: str, value: Any) -> None:
        """A writer reports a readback (e.g. chosen chunk sizes) by record name."""
        drvinfo = self.record_params.get(name[:-4] if name.endswith("_RBV") else name)
        if drvinfo is None:
            self.log.warning("writer readback %s=%r has no record", name, value)
            return
        self.params.set(drvinfo, value)

    # -- errors ---------------------------------------------------------------
    def _error(self, message: str) -> None:
        self.params.set("WRITE_STATUS", 1)
        self.params.set("WRITE_MESSAGE", message)
        self.log.warning("%s", message)

    # -- paths ------------------------------------------------------------------
    def confinement_error(self, path: str) -> str | None:
        """Why ``path`` may not be written to (None if it may)."""
        if self.write_root is None:
            return None
        real = Path(os.path.realpath(path))
        if real == self.write_root or self.write_root in real.parents:
            return None
        return f"FilePath {path} is outside the IOC write root {self.write_root}"

    def file_confinement_error(self, path: str) -> str | None:
        """Why the *file* ``path`` may not be created, replaced or renamed (None if it may).

        The directory check alone is not enough: a name inside the root can be a
        symlink to a file anywhere, and every writer would write through it.  So
        the name must not be a symlink at all (even one pointing inside the root:
        it could be re-pointed between the check and the open), and the real path
        of its directory must be inside the root.
        """
        if self.write_root is None:
            return None
        if os.path.islink(path):
            return f"file {path} is a symbolic link; the IOC does not write through links"
        directory, name = os.path.split(path)
        if not name or name in (".", ".."):
            return f"file name {path!r} names a directory, not a file"
        real = Path(os.path.realpath(directory or "."), name)
        if self.write_root in real.parents:
            return None
        return f"file {path} is outside the IOC write root {self.write_root}"

    @staticmethod
    def create_no_follow(path: str) -> None:
        """Create (or truncate) ``path`` without following a symlink at its name.

        The writers open files by name; creating the file first with O_NOFOLLOW
        closes the window in which a link could appear between the check and the
        writer's own open (it then finds a regular file and truncates it again).
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            if os.path.islink(path):
                raise FileError(f"file {path} is a symbolic link; not followed") from None
            raise FileError(exc.strerror) from None  # the caller names the file
        os.close(fd)

    def check_path(self) -> bool:
        """asynNDArrayDriver::checkPath: FilePathExists and the trailing '/'."""
        p = self.params
        path = p.get("FILE_PATH")
        if not path:
            return False
        # ADCore strips one trailing separator and stats the rest: "/" stats "" (No)
        stripped = path[:-1] if path.endswith("/") else path
        refused = self.confinement_error(stripped) if stripped else None
        exists = bool(stripped) and refused is None and os.path.isdir(stripped)
        p.set("FILE_PATH_EXISTS", int(exists))
        p.set("FILE_PATH", stripped.rstrip("/") + "/")
        if refused:
            self._error(refused)
        return exists

    def write_file_path(self, value: str) -> None:
        p = self.params
        p.set("FILE_PATH", value)
        if (
            not self.check_path()
            and value.rstrip("/")
            and self.confinement_error(value.rstrip("/")) is None
        ):
            try:
                create_file_path(value, p.get("CREATE_DIR"))
            except OSError as exc:
                self._error(f"Error creating directory {value}: {exc.strerror}")
            self.check_path()

    def create_file_name(self) -> str:
        """asynNDArrayDriver::createFileName (auto-increments FileNumber afterwards)."""
        p = self.params
        self.check_path()
        number = p.get("FILE_NUMBER")
        full = format_file_name(
            p.get("FILE_TEMPLATE"), p.get("FILE_PATH"), p.get("FILE_NAME"), number
        )
        if p.get("AUTO_INCREMENT"):
            p.set("FILE_NUMBER", number + 1)
        return full

    # -- open / write / close ------------------------------------------------------
    def open_file(self, array: NDArray) -> bool:
        """NDPluginFile::openFileBase; False (and WriteStatus error) on failure."""
        p = self.params
        if self._open:
            self.close_file()
        created = False
        # openFileBase starts from "Write OK": an old refusal must not outlive a good open
        p.set("WRITE_STATUS", 0)
        p.set("WRITE_MESSAGE", "")
        try:
            full = self.create_file_name()
            refused = self.confinement_error(os.path.dirname(full) or ".")
            if refused:
                raise FileError(refused)
            p.set("FULL_FILE_NAME", full)
            self._final_path = full
            self._open_path = full + p.get("FILE_TEMP_SUFFIX")
            for path in {full, self._open_path}:
                refused = self.file_confinement_error(path)
                if refused:
                    raise FileError(refused)
            self.writer = self.make_writer()
            mode = MODE_NAMES[p.get("WRITE_MODE")] if 0 <= p.get("WRITE_MODE") < 3 else "Single"
            num_capture = p.get("NUM_CAPTURE") if mode != "Single" else 1
            if self.write_root is not None:
                created = not os.path.lexists(self._open_path)
                self.create_no_follow(self._open_path)
            self.writer.open(self._open_path, array, self.writer_params(), num_capture, mode)
        except Exception as exc:  # FileError, OSError, writer errors
            self.writer = None
            if created:  # leave no empty file behind (unlink never follows a link)
                with contextlib.suppress(OSError):
                    os.unlink(self._open_path)
            self._error(f"Error opening file {p.get('FULL_FILE_NAME')}: {exc}")
            return False
        self._open = True
        self._frame_shape = (array.data.shape, array.data.dtype)
        # a file that is written, but not quite as asked (e.g. a compressor this
        # build lacks): WriteStatus stays OK, WriteMessage says what happened
        p.set("WRITE_MESSAGE", getattr(self.writer, "open_message", "") or "")
        return True

    def write_array(self, array: NDArray) -> bool:
        try:
            self.writer.write(array)
        except Exception as exc:
            self._error(f"Error writing file: {exc}")
            return False
        return True

    def close_file(self) -> None:
        """NDPluginFile::closeFileBase: close, then rename the temporary file."""
        if not self._open:
            return
        self._open = False
        writer, self.writer = self.writer, None
        try:
            readbacks = writer.close() or {}
            for name, value in readbacks.items():
                self.on_readback(name, value)
        except Exception as exc:
            self._error(f"Error closing file: {exc}")
        if self._open_path != self._final_path:
            refused = self.file_confinement_error(self._open_path) or self.file_confinement_error(
                self._final_path
            )
            if refused:
                self._error(f"Error renaming temporary file {self._open_path}: {refused}")
                return
            try:
                os.replace(self._open_path, self._final_path)
            except OSError as exc:
                self._error(f"Error renaming temporary file {self._open_path}: {exc.strerror}")

    def is_frame_valid(self, array: NDArray) -> bool:
        """NDPluginFile::isFrameValid: same X/Y size and bit width as at open."""
        if self._frame_shape is None:
            return True
        shape, dtype = self._frame_shape
        return array.data.shape == shape and array.data.dtype.itemsize == dtype.itemsize

    def write_single(self, array: NDArray) -> None:
        """One array to its own file (Single mode, or a format without multi-array files)."""
        if self.open_file(array):
            self.write_array(array)
            self.close_file()

    # -- processCallbacks ------------------------------------------------------------
    def process(self, array: NDArray) -> None:
        p = self.params
        mode = p.get("WRITE_MODE")
        if mode == SINGLE:
            if p.get("AUTO_SAVE"):
                self.count_array()
                p.set("NUM_CAPTURED", 1)
                self.write_single(array)
        elif mode == CAPTURE:
            if p.get("CAPTURE"):
                if self._capture_buffer and not self._same_frame(array, self._capture_buffer[0]):
                    self._error("Invalid frame. Ignoring.")
                else:
                    self._capture_buffer.append(array)
                    self.count_array()
                    n = len(self._capture_buffer)
                    p.set("NUM_CAPTURED", n)
                    if n >= p.get("NUM_CAPTURE"):
                        p.set("CAPTURE", 0)
                        if p.get("AUTO_SAVE"):
                            self.write_capture_buffer()
        elif mode == STREAM:
            if p.get("CAPTURE"):
                self._stream(array)
        self.emit(array)

    @staticmethod
    def _same_frame(a: NDArray, b: NDArray) -> bool:
        return a.data.shape == b.data.shape and a.data.dtype.itemsize == b.data.dtype.itemsize

    def _stream(self, array: NDArray) -> None:
        p = self.params
        multiple = self.multiple_arrays
        if not multiple:
            self.count_array()
            p.set("NUM_CAPTURED", p.get("NUM_CAPTURED") + 1)
            self.write_single(array)
        else:
            if not self._open:
                if not self.open_file(array):
                    self._stop_capture()
                    return
            if not self.is_frame_valid(array):
                self._error("Invalid frame. Ignoring.")
                return
            if not self.write_array(array):
                self.close_file()
                self._stop_capture()
                return
            self.count_array()
            p.set("NUM_CAPTURED", p.get("NUM_CAPTURED") + 1)
        n, limit = p.get("NUM_CAPTURED"), p.get("NUM_CAPTURE")
        if limit > 0 and n >= limit:
            self.close_file()
            self._stop_capture()

    def _stop_capture(self) -> None:
        self.params.set("CAPTURE", 0)
        self.params.set("WRITE_FILE", 0)

    def write_capture_buffer(self) -> None:
        """Write the Capture-mode buffer (one file, or one per array)."""
        p = self.params
        buffer = self._capture_buffer
        if not buffer:
            self._error("ERROR, no capture buffer present")
            return
        p.set("WRITE_FILE", 1)
        p.call_callbacks()
        multiple = self.multiple_arrays
        if multiple:
            if self.open_file(buffer[0]):
                for i, array in enumerate(buffer):
                    if not self.write_array(array):
                        break
                    p.set("NUM_CAPTURED", len(buffer) - i - 1)
                self.close_file()
        else:
            for i, array in enumerate(buffer):
                self.write_single(array)
                p.set("NUM_CAPTURED", len(buffer) - i - 1)
        self._capture_buffer = []
        p.set("NUM_CAPTURED", 0)
        p.set("WRITE_FILE", 0)

    # -- writes from clients ---------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        p = self.params
        if name == "FILE_PATH":
            self.write_file_path(value)
        elif name == "CAPTURE":
            self.write_capture(int(value))
        elif name == "WRITE_FILE":
            if value:
                self.write_file_now()
        elif name == "FREE_CAPTURE":
            self._capture_buffer = []
            p.set("NUM_CAPTURED", 0)
        elif name == "WRITE_MODE":
            if p.get("CAPTURE"):
                self._error("ERROR: cannot change FileWriteMode while capturing")
                return
            p.set(name, value)
        else:
            super().write_param(addr, name, value)

    def write_capture(self, value: int) -> None:
        p = self.params
        mode = p.get("WRITE_MODE")
        if not value:
            if mode == STREAM and self._open:
                self.close_file()
            p.set("CAPTURE", 0)
            p.set("WRITE_FILE", 0)
            return
        p.set("CAPTURE", 0)
        p.set("WRITE_STATUS", 0)
        p.set("WRITE_MESSAGE", "")
        p.set("FULL_FILE_NAME", "")
        self._lazy = bool(p.get("FILE_LAZY_OPEN"))
        last = getattr(self, "_last_array", None)
        if mode == SINGLE:
            # R3-14 doCapture: the message is shown, but WriteStatus stays OK
            p.set("WRITE_MESSAGE", "ERROR: capture not supported in Single mode")
            self.log.error("doCapture ERROR: capture not supported in Single mode")
            return
        if mode == CAPTURE:
            if p.get("NUM_CAPTURE") == 0:
                if p.get("AUTO_SAVE"):
                    self._error("ERROR, no capture buffer present")
                return
            self._capture_buffer = []
            p.set("NUM_CAPTURED", 0)
            p.set("CAPTURE", 1)
            return
        # Stream
        p.set("NUM_CAPTURED", 0)
        if self._lazy:
            if self._open:
                self.close_file()
            p.set("WRITE_MESSAGE", "Lazy Open...")
            p.set("CAPTURE", 1)
            p.set("WRITE_FILE", 1)
            return
        if last is None:
            # R3-14 doCapture reports this on the IOC console only: WriteStatus
            # stays OK, WriteMessage empty, Capture back to Done
            self.log.error("doCapture: ERROR, must collect an array to get dimensions first")
            return
        multiple = self.multiple_arrays
        if multiple and not self.open_file(last):
            return
        p.set("WRITE_FILE", 1)
        p.set("CAPTURE", 1)

    def write_file_now(self) -> None:
        """WriteFile=1: write the last array (Single) or the capture buffer (Capture)."""
        p = self.params
        mode = p.get("WRITE_MODE")
        last = getattr(self, "_last_array", None)
        if mode == SINGLE:
            if last is None:
                self._error("ERROR: no arrays collected")
            else:
                p.set("WRITE_FILE", 1)
                p.call_callbacks()
                self.write_single(last)
                self.count_array()
        elif mode == CAPTURE:
            self.write_capture_buffer()
        p.set("WRITE_FILE", 0)

    def stop(self) -> None:
        with self.params.lock:
            if self._open:
                self.close_file()
        super().stop()
