"""The IOC refuses to open the file at stage: stage fails at once with the IOC's words.

KNOWN BUG 5: stage waited the whole Capture_RBV timeout (10 s) and only then reported
WriteMessage; a watch on WriteStatus could not be enabled because a "Write error" left
by an earlier failure tripped the next, good stage.  Now the Capture=1 put-completion
(a busy record completes at once when the capture could not start) makes stage read
WriteStatus/WriteMessage for *this* capture.

Faults made without root: a directory where the file should be created (EISDIR on
open), and a FileName that leads out of the IOC's write root (confinement).  What is
checked: the error is the IOC's write error (FileWriteError carrying the WriteMessage
read here over CA, the WriteStatus PV, the IOC path and the workstation path), not a
timeout; a second failure reports its own message, not the earlier one; and a good
stage afterwards works although WriteStatus still shows the earlier "Write error".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from netns import ca_get, ca_put

pytestmark = pytest.mark.ioc


def _count(RE, det):
    import bluesky.plans as bp

    return RE(bp.count([det], num=1))


def _expect_open_error(
    RE, det, hdf: str, ioc_dir: str, read_dir: str, error_stays: bool = True
) -> str:
    """Run a count that must fail at stage with the IOC's write error; return it.

    ``error_stays``: the simulated IOC keeps WriteStatus/WriteMessage after the failed
    stage's restores; the real R3-14 IOC is back at Write OK by then, so there the
    IOC's message is taken from the error the stage raised.
    """
    from adtoolkit.devices import FileWriteError

    with pytest.raises(FileWriteError) as info:
        _count(RE, det)
    message = str(info.value)
    assert not isinstance(info.value, TimeoutError)
    assert "timed out" not in message and "after 10 s" not in message, message
    if error_stays:
        ioc_message = str(ca_get(hdf + "WriteMessage", as_string=True))
        assert ca_get(hdf + "WriteStatus") == 1
    else:
        ioc_message = message.split(f"{hdf}WriteMessage: ", 1)[-1].split("'")[1]
    assert ioc_message and ioc_message in message, (ioc_message, message)
    assert f"{hdf}WriteStatus" in message and f"{hdf}WriteMessage" in message
    assert ioc_dir in message and read_dir in message, message
    assert ca_get(hdf + "Capture_RBV") == 0
    return ioc_message


def test_refused_open_fails_stage_with_the_ioc_message_and_a_good_stage_follows(ioc, tmp_path):
    from bluesky import RunEngine

    from adtoolkit.devices import make_detector

    hdf = ioc.prefix + "HDF1:"
    ioc_dir = Path(ioc.write_root) / "openerr"
    ioc_dir.mkdir(exist_ok=True)
    # the workstation sees the same directory under another path
    view = tmp_path / "view"
    view.symlink_to(Path(ioc.read_root) / "openerr", target_is_directory=True)
    saved = {pv: ca_get(hdf + pv, as_string=True) for pv in ("FileName", "FilePath")}
    saved_number = ca_get(hdf + "FileNumber")
    det = make_detector(
        ioc.prefix,
        name="oerr",
        plugins="hdf1",
        write_path=f"{ioc_dir}/",
        read_path=f"{view}/",
        naming="epics",
    )
    for pv, value in [("SizeX", 64), ("SizeY", 48), ("AcquireTime", 0.001)]:
        ca_put(ioc.prefix + "cam1:" + pv, value)
    RE = RunEngine({})
    try:
        # 1. a directory stands where the file is to be created
        ca_put(hdf + "FileName", "blocked")
        ca_put(hdf + "FileNumber", 7)
        (ioc_dir / "blocked_000007.h5").mkdir(exist_ok=True)
        first = _expect_open_error(
            RE, det, hdf, f"{ioc_dir}/", f"{view}/", error_stays=not ioc.is_real
        )
        assert "blocked_000007.h5" in first
        # settings restored by the failed stage
        # (the same directory: a restore may write it with its trailing separator)
        restored = ca_get(hdf + "FilePath", as_string=True)
        assert restored.rstrip("/") == saved["FilePath"].rstrip("/")

        # 2. a new failure (FileName leads out of the write root) reports its own
        # message, not the one still shown from the first failure; write-root
        # confinement is the simulated IOC's own (the real one would write there)
        if not ioc.is_real:
            ca_put(hdf + "FileName", "../../../escape")
            ca_put(hdf + "FileNumber", 9)
            second = _expect_open_error(RE, det, hdf, f"{ioc_dir}/", f"{view}/")
            assert second != first and "blocked_000007" not in second
            assert "write root" in second, second
            assert not (Path(ioc.write_root).parent.parent / "escape_000009.h5").exists()

        # 3. the stale "Write error" (simulated IOC) must not fail a good stage
        assert ca_get(hdf + "WriteStatus") == (0 if ioc.is_real else 1)
        ca_put(hdf + "FileName", "good")
        ca_put(hdf + "FileNumber", 11)
        _count(RE, det)
        assert ca_get(hdf + "WriteStatus") == 0
        assert (ioc_dir / "good_000011.h5").is_file()
        assert det.hdf1.read_file_name == f"{view}/good_000011.h5"
    finally:
        det.destroy()
        for pv, value in saved.items():
            ca_put(hdf + pv, value)
        ca_put(hdf + "FileNumber", saved_number)
