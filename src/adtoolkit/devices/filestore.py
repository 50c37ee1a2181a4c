"""HDF5 plugin that writes one file per run and tells bluesky where the frames are.

Per stage (one run) the plugin is put in Stream mode with capture on; every trigger
appends ``frames_per_point`` frames to the same file, and every ``generate_datum``
emits one datum pointing at that slice.  Resource and datum documents use the
``AD_HDF5`` spec, so ``area_detector_handlers`` reads them back through databroker.

File names are either ophyd style (a random UUID-derived FileName, FileNumber 0) or
EPICS-driven (FileName and FileNumber as set in the IOC, auto-incremented, as apstools
does).  The name is computed from what we write, not from ``FileNumber_RBV - 1``, so it
is right with LazyOpen too (ophyd computes ``name_-000001.h5`` there).

Pause and resume.  An ``AD_HDF5`` datum has no frame offset: point ``p`` means frames
``[p*fpp, (p+1)*fpp)`` of the resource's file.  A trigger cut short by a pause leaves
frames in the file that no datum claims, and every later point would be shifted by
them.  So :meth:`HDF5FileStore.close_file` (on pause) closes the file -- every frame a
datum claims is then safely on disk -- and :meth:`HDF5FileStore.next_file` (on
resume) opens a new file with a new resource whose point numbering starts again at 0.
A run may so have several resources; each datum names its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Literal

from ophyd import Signal

from ..paths import PathTemplates, RenderedPaths
from .assets import AssetDocuments
from .batchread import read_many
from .errors import ConfigurationError, FilePathError, FileWriteError, StagingError
from .plugins import HDF5Plugin
from .priming import PLUGIN_SIGNALS, FrameSpec, expected_frame, frames, needs_priming, prime
from .staging import StageSigs, resolve
from .writes import WriteBatch, current, put_wait, put_wait_readback, wait_for

__all__ = ["HDF5FileStore", "DEFAULT_FILE_TEMPLATE"]

logger = logging.getLogger(__name__)

DEFAULT_FILE_TEMPLATE = "%s%s_%6.6d.h5"
Naming = Literal["uuid", "epics"]

#: every setting :meth:`HDF5FileStore._file_sigs` may write
FILE_SETTINGS = (
    "create_directory",
    "file_path",
    "file_name",
    "file_number",
    "auto_increment",
    "file_template",
    "auto_save",
    "file_write_mode",
    "num_capture",
    "lazy_open",
    "capture",
)


def is_write_error(value: Any) -> bool:
    """WriteStatus value (enum string or index) means "Write error"."""
    if isinstance(value, str):
        return value in ("Write error", "1")
    try:
        return int(value) == 1
    except (TypeError, ValueError):
        return False


def _check_file_template(template: str) -> None:
    if not isinstance(template, str):
        raise ConfigurationError(f"file_template must be a str, not {template!r}")
    try:
        template % ("/p/", "n", 1)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"file_template {template!r} is not a C-style template taking (path, name, "
            f"number), e.g. {DEFAULT_FILE_TEMPLATE!r}: {exc}"
        ) from None
    if not template.startswith("%s%s"):
        raise ConfigurationError(
            f"file_template {template!r} must start with '%s%s' (directory, then name)"
        )


class HDF5FileStore(HDF5Plugin):
    """NDFileHDF5 plugin + bluesky asset documents (resource/datum, ``AD_HDF5``).

    Configure with :meth:`configure_files` (``make_detector`` does it).
    """

    filestore_spec = "AD_HDF5"

    #: the file settings written on stage (:meth:`_file_sigs`), the records read to
    #: check them and the frames, and priming's: connected up front by make_detector
    used_signals = (
        *FILE_SETTINGS,
        "file_path_exists",
        "full_file_name",
        "write_status",
        "write_message",
        "num_captured",
        *PLUGIN_SIGNALS,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paths: PathTemplates | None = None
        self.naming: Naming = "uuid"
        self.use_lazy_open = False
        self.file_template_str = DEFAULT_FILE_TEMPLATE
        self.frames_per_point = 1
        self.num_capture_value = 0  # 0: unlimited, until unstage
        self.image_key: str | None = None
        self._docs = AssetDocuments(self.filestore_spec)
        self._last_reading: dict | None = None
        self._rendered: RenderedPaths | None = None
        self._frame: FrameSpec | None = None
        self.ioc_file_name: str | None = None
        self._file_sigs_cache: StageSigs = StageSigs()
        self.read_file_name: str | None = None
        # ophyd added enable/blocking_callbacks/cam.array_callbacks; keep them.

    # -- configuration ----------------------------------------------------------
    def configure_files(
        self,
        paths: PathTemplates,
        *,
        naming: Naming = "uuid",
        lazy_open: bool = False,
        file_template: str = DEFAULT_FILE_TEMPLATE,
    ) -> None:
        """Validate and store the file settings (nothing is sent to the IOC here)."""
        if not isinstance(paths, PathTemplates):
            raise ConfigurationError(f"paths must be a PathTemplates, not {paths!r}")
        if naming not in ("uuid", "epics"):
            raise ConfigurationError(f"naming must be 'uuid' or 'epics', not {naming!r}")
        if not isinstance(lazy_open, bool):
            raise ConfigurationError(f"lazy_open must be True or False, not {lazy_open!r}")
        _check_file_template(file_template)
        self.paths, self.naming, self.use_lazy_open = paths, naming, lazy_open
        self.file_template_str = file_template

    # -- staging ----------------------------------------------------------------
    def _file_sigs(self) -> StageSigs:
        if self.paths is None:
            raise ConfigurationError(
                f"{self.name}: no write path configured (make_detector(write_path=...) or "
                "configure_files())"
            )
        self._rendered = self.paths.render()
        tail = len(PurePosixPath(self._rendered.write_dir).parts) - len(
            PurePosixPath(self.paths.write_root).parts
        )
        if self.paths.semantics == "windows":
            tail = len(PureWindowsPath(self._rendered.write_dir).parts) - len(
                PureWindowsPath(self.paths.write_root).parts
            )
        sigs = StageSigs(self.stage_sigs)
        sigs["create_directory"] = -max(1, tail)
        sigs["file_path"] = self._rendered.write_dir
        if self.naming == "uuid":
            sigs["file_name"] = "-".join(str(uuid.uuid4()).split("-")[:-1])
            sigs["file_number"] = 0
        sigs["auto_increment"] = "Yes"
        sigs["file_template"] = self.file_template_str
        sigs["auto_save"] = "Yes"
        sigs["file_write_mode"] = "Stream"
        sigs["num_capture"] = int(self.num_capture_value)
        sigs["lazy_open"] = "Yes" if self.use_lazy_open else "No"
        sigs["capture"] = 1
        return sigs

    def _stage_pairs(self) -> list[tuple[Signal, Any]]:
        self._file_sigs_cache = self._file_sigs()
        return resolve(self, self._file_sigs_cache.items())

    def _check_file_path(self) -> None:
        assert self._rendered is not None and self.paths is not None
        want = self._rendered.write_dir
        pure = PureWindowsPath if self.paths.semantics == "windows" else PurePosixPath
        path, exists = read_many([self.file_path, self.file_path_exists])
        if pure(path or "") != pure(want):
            try:
                wait_for(
                    lambda: pure(self.file_path.get(use_monitor=False) or "") == pure(want),
                    self.stage_timeout,
                    f"{getattr(self.file_path, 'pvname', self.file_path.name)} to read back "
                    f"{want!r}",
                )
            except TimeoutError as exc:
                raise StagingError(str(exc)) from None
            exists = self.file_path_exists.get(use_monitor=False)
        if exists in (0, "No"):
            raise FilePathError(
                f"{self.prefix}FilePathExists_RBV is No: the IOC cannot write to "
                f"{want!r} (workstation path {self._rendered.read_dir!r}, mapping "
                f"{self.paths.describe_mapping()}). Create the directory or check the "
                "mount on the IOC host."
            )

    def _stage_checks(self) -> dict[str, Callable[[], None]]:
        return {"file_path": self._check_file_path}

    def _stage_watches(self) -> dict:
        # Capture=1 clears WriteStatus and sets it to "Write error" when the file cannot
        # be opened (disk full, permission denied, outside the write root...): report
        # that at once, with the IOC's words, instead of waiting stage_timeout for a
        # Capture_RBV that will never become 1.  WriteStatus is read when the Capture
        # put completes early (the capture ended at once), so a "Write error" left by an
        # earlier failure cannot fail a good stage (see put_wait_readback).
        return {"capture": (self.write_status, self._open_error)}

    def _open_error(self, value: Any) -> BaseException | None:
        if not is_write_error(value):
            return None
        return FileWriteError(
            f"{self.name}: the IOC could not open the file on {self.prefix}Capture=1: "
            + self.write_error()
        )

    def write_error(self) -> str:
        """The IOC's WriteMessage and the file's paths, for error messages."""
        try:
            why = self.write_message.get(use_monitor=False)
        except Exception as exc:  # noqa: BLE001 - the message is best effort
            why = f"? (cannot read: {exc})"
        rendered = getattr(self, "_rendered", None)
        ioc_dir = getattr(rendered, "write_dir", None) or "?"
        read_dir = getattr(rendered, "read_dir", None) or "?"
        return (
            f"{self.prefix}WriteStatus is 'Write error', {self.prefix}WriteMessage: {why!r} "
            f"(IOC path {ioc_dir!r}, workstation path {read_dir!r})"
        )

    def _before_stage(self, batch: WriteBatch) -> None:
        cam = self.parent.cam
        # a capture left running (e.g. by a crashed session) would keep the old file
        if current(self.capture) not in (0, "Done"):
            put_wait_readback(self.capture, 0, self.stage_timeout)
        if self.use_lazy_open:
            self._frame = expected_frame(cam)
            return
        read = frames(cam, self)  # the cam's next frame and the plugin's last, at once
        if needs_priming(cam, self, read):
            logger.info("priming %s", self.name)
            # the stage's writes so far must be in place before priming reads and
            # changes the cam; priming's own writes are waited for and restored
            # before the stage goes on
            batch.barrier()
            prime(cam, self, timeout=self.stage_timeout)
        # priming restores what it changed, none of which shapes the frame
        self._frame = read[0]

    def stage(self, *, batch: WriteBatch | None = None) -> list[object]:
        self._docs.reset()
        self._last_reading = None
        if self.naming == "epics":
            # FileName and FileNumber come from EPICS; the number is used at open time
            self._epics_name = current(self.file_name)
            self._epics_number = int(current(self.file_number))
        try:
            staged = super().stage(batch=batch)
        except TimeoutError as exc:
            # the IOC says why a capture did not start (e.g. "No arrays collected")
            try:
                why = self.write_message.get(use_monitor=False)
            except Exception:  # noqa: BLE001 - the timeout is the error to report
                why = "?"
            raise StagingError(f"{exc}; {self.prefix}WriteMessage: {why!r}") from exc
        try:
            self._after_capture()
        except BaseException:
            self.unstage(batch=batch)
            raise
        return staged

    def _expected_ioc_file(self) -> str:
        assert self._rendered is not None
        sigs = self._file_sigs_cache
        name = sigs.get("file_name", getattr(self, "_epics_name", ""))
        number = sigs.get("file_number", getattr(self, "_epics_number", 0))
        return self.file_template_str % (self._rendered.write_dir, name, number)

    def _after_capture(self) -> None:
        assert self.paths is not None
        expected = self._expected_ioc_file()
        if not self.use_lazy_open:
            full = self.full_file_name.get(use_monitor=False)
            pure = PureWindowsPath if self.paths.semantics == "windows" else PurePosixPath
            if full and pure(full) != pure(expected):
                raise StagingError(
                    f"{self.prefix}FullFileName_RBV is {full!r} but the settings written "
                    f"give {expected!r}; refusing to record a wrong file name"
                )
        self.ioc_file_name = expected
        read_path = self.paths.to_read_path(expected)
        self.read_file_name = str(read_path)
        self._make_resource(read_path)

    # -- pause / resume ----------------------------------------------------------
    def close_file(self) -> None:
        """Close the file now (Capture=0, waited for, at most ``stage_timeout``).

        Called on pause, once the cam is idle: the frames claimed by datums are then on
        disk during a pause that may last long (a beam dump), and frames of an
        interrupted trigger stay at the end of this file, claimed by no datum.
        """
        if current(self.capture) not in (0, "Done"):
            put_wait_readback(self.capture, 0, self.stage_timeout)

    def next_file(self) -> None:
        """Start a new file of the same run with a new resource (on resume).

        The closed file must be readable where its resource says (when a datum claims
        it).  The new file has the same directory; its name is a new UUID name (uuid
        naming) or the IOC's next FileNumber (epics naming, AutoIncrement).  Settings
        written here are not added to what unstage restores: unstage restores the
        values from before the stage, which is what it must do.
        """
        if self._docs.resource_uid is None:
            raise RuntimeError(f"{self.name}: next_file() needs a staged file plugin")
        self.close_file()
        if self._docs.datums_in_file and self.paths is not None and self.ioc_file_name:
            self.paths.existing_read_path(self.ioc_file_name)
        self._docs.drop_unclaimed_resource()
        sigs = self._file_sigs_cache
        if self.naming == "uuid":
            name = "-".join(str(uuid.uuid4()).split("-")[:-1])
            put_wait(self.file_name, name, self.stage_timeout)
            put_wait(self.file_number, 0, self.stage_timeout)
            sigs["file_name"], sigs["file_number"] = name, 0
        else:
            # AutoIncrement moved FileNumber on when the file closed
            self._epics_name = current(self.file_name)
            self._epics_number = int(current(self.file_number))
        self._docs.close_resource()
        self._last_reading = None
        put_wait_readback(
            self.capture, 1, self.stage_timeout, (self.write_status, self._open_error)
        )
        self._after_capture()

    # -- documents --------------------------------------------------------------
    def _make_resource(self, read_path) -> None:
        assert self.paths is not None
        root = self.paths.read_root
        rel = PurePosixPath(read_path).relative_to(PurePosixPath(root))
        self._docs.new_resource(root, str(rel), {"frame_per_point": int(self.frames_per_point)})

    def generate_datum(self, key: str, timestamp: float, datum_kwargs: dict | None = None) -> str:
        """One datum per trigger: frames ``[i*fpp, (i+1)*fpp)`` of the file."""
        if self._docs.resource_uid is None:
            raise RuntimeError(f"{self.name}: generate_datum before stage")
        datum_id = self._docs.datum(datum_kwargs)
        self._last_reading = {"value": datum_id, "timestamp": timestamp}
        self.image_key = key
        return datum_id

    def collect_asset_docs(self):
        yield from self._docs.collect()

    def data_key(self) -> dict:
        """Descriptor entry of the image: (frames_per_point, Y, X[, 3])."""
        frame = self._frame or expected_frame(self.parent.cam)
        return {
            "shape": [int(self.frames_per_point), *frame.shape],
            "source": f"PV:{self.prefix}",
            "dtype": "array",
            "dtype_numpy": frame.numpy_dtype,
            "external": "FILESTORE:",
        }

    def read(self):
        out = super().read()
        if self.image_key is not None and self._last_reading is not None:
            out[self.image_key] = dict(self._last_reading)
        return out

    def describe(self):
        out = super().describe()
        if self.image_key is not None:
            out[self.image_key] = self.data_key()
        return out

    def _after_unstage(self) -> None:
        wrote = self._docs.resource_uid is not None and self._last_reading is not None
        self._docs.close_resource()
        self._last_reading = None
        if wrote and self.paths is not None and self.ioc_file_name:
            # the file is closed now: it must be readable where the resource says
            self.paths.existing_read_path(self.ioc_file_name)
