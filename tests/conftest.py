"""Shared fixtures: the simulated IOC as a real subprocess, reached over Channel Access.

- ``ioc`` (session): one IOC for the whole run, prefix ``adt:``.  Its client
  environment (EPICS_CA_ADDR_LIST with every port of a pre-reserved pool,
  EPICS_CA_AUTO_ADDR_LIST=NO, ...) is set when pytest starts, before pyepics or
  ophyd can create a CA context, and os.environ is restored at the end.
- ``ioc_factory``: starts extra IOCs (own prefix, next port of the pool, so the
  running CA clients already search there) for tests that kill or restart one.

Two kinds of session IOC: ``sim`` (ours) and ``real`` (the areaDetector simDetector IOC,
ADCore R3-14, unpacked from ``../shared/real-adsim/real-adsim-runtime.tar.gz``).  Every
test that uses ``ioc`` (directly or through ``ca``/``cam``/...) runs once per kind, with
ids ``[sim]``/``[real]``; ``--ioc-kind`` or ADTOOLKIT_IOC_KIND (``sim``, ``real``, ``both``;
default ``both``) chooses.  Without the tarball the ``real`` runs skip, saying so.  Tests
of features only the simulated IOC has carry ``@pytest.mark.sim_only("why")``.  One real
IOC serves the whole session; its CA port starts a block of four free ports (pvAccess
takes CA+2 and CA+3).

External mode: with ADTOOLKIT_IOC_PREFIX set, ``ioc`` points at an already
running IOC (ADTOOLKIT_IOC_WRITE_ROOT: the path as the IOC sees it,
ADTOOLKIT_READ_ROOT: the same directory as this machine sees it); the CA
environment is then left as the user set it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from adtoolkit.ioc.launcher import SimulatedIOC, client_env, free_port
from adtoolkit.ioc.realioc import RealIOC, find_tarball, free_port_block

# Fuzz tests (hypothesis): the test suite is what CI runs to decide whether work lands, so
# by default their examples are derived from each test (the same every run: a red run is
# reproducible, and never caused by a new random draw). HYPOTHESIS_PROFILE=explore draws
# fresh random examples, to hunt for new failures.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # hypothesis is in the test extra; without it the fuzz tests fail to import
    pass
else:
    _hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
    _hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

#: ports reserved at start-up: [0] for the session IOC, the rest for ioc_factory
POOL_SIZE = 6
_saved_env: dict[str, str | None] = {}
_pool: list[int] = []
#: the real IOC's CA port (the first of four consecutive free ports)
_real_port: list[int] = []
IOC_KINDS = ("sim", "real")
REAL_PREFIX = "adtr:"


def _external_prefix() -> str | None:
    return os.environ.get("ADTOOLKIT_IOC_PREFIX") or os.environ.get("ADTOOLKIT_EXTERNAL_PREFIX")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ioc-kind",
        choices=("sim", "real", "both"),
        default=None,
        help="IOC the IOC-backed tests run against (default: $ADTOOLKIT_IOC_KIND or both)",
    )


def _ioc_kinds(config: pytest.Config) -> list[str]:
    if _external_prefix():
        return ["external"]
    kind = config.getoption("--ioc-kind") or os.environ.get("ADTOOLKIT_IOC_KIND") or "both"
    if kind not in ("sim", "real", "both"):
        raise pytest.UsageError(f"ADTOOLKIT_IOC_KIND={kind!r}: expected sim, real or both")
    return list(IOC_KINDS) if kind == "both" else [kind]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sim_only(reason): tests a feature only the simulated IOC has; skipped against "
        "the real or an external IOC",
    )
    if _external_prefix():
        return
    _real_port[:] = free_port_block(4)[:1]
    _pool[:] = []
    for _ in range(POOL_SIZE):
        _pool.append(free_port(exclude=[*_pool, *range(_real_port[0], _real_port[0] + 4)]))
    for key, value in client_env([*_pool, *_real_port]).items():
        _saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved_env.clear()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ioc_kind" in metafunc.fixturenames:
        kinds = _ioc_kinds(metafunc.config)
        metafunc.parametrize("ioc_kind", kinds, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("ioc_kind") if callspec else None
        marker = item.get_closest_marker("sim_only")
        if kind in ("real", "external") and marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"simulated IOC only: {why}"))


@pytest.fixture(scope="session")
def ioc_kind(request: pytest.FixtureRequest) -> str:
    """``sim``, ``real`` or ``external``: which IOC the session ``ioc`` is."""
    kind = request.param
    if kind == "real" and find_tarball(Path(__file__).parent) is None:
        pytest.skip(
            "real IOC pass: ../shared/real-adsim/real-adsim-runtime.tar.gz is absent "
            "(set ADTOOLKIT_REAL_ADSIM to the tarball to run it)"
        )
    return kind


@dataclass
class IOCHandle:
    """What tests need to know about an IOC."""

    prefix: str
    write_root: Path  # as the IOC sees it
    read_root: Path  # as this machine sees it
    port: int | None
    process: SimulatedIOC | RealIOC | None = None
    kind: str = "sim"

    @property
    def is_real(self) -> bool:
        """Not our simulated IOC (the real one, or an external one)."""
        return self.kind != "sim"

    def pv(self, suffix: str) -> str:
        return self.prefix + suffix


@pytest.fixture(scope="session")
def ioc(ioc_kind: str, tmp_path_factory: pytest.TempPathFactory):
    prefix = _external_prefix()
    if prefix:
        write_root = os.environ.get("ADTOOLKIT_IOC_WRITE_ROOT")
        if not write_root:
            pytest.fail("ADTOOLKIT_IOC_PREFIX is set but ADTOOLKIT_IOC_WRITE_ROOT is not")
        read_root = os.environ.get("ADTOOLKIT_READ_ROOT", write_root)
        yield IOCHandle(prefix, Path(write_root), Path(read_root), None, kind="external")
        return
    if ioc_kind == "real":
        tarball = find_tarball(Path(__file__).parent)
        assert tarball is not None  # ioc_kind skipped otherwise
        base = tmp_path_factory.mktemp("real_ioc")
        root = base / "data"
        # its own CA client (EPICS_PV attributes) also searches the ioc_factory IOCs
        pool = " ".join(f"127.0.0.1:{p}" for p in _pool)
        real = RealIOC(
            tarball,
            REAL_PREFIX,
            _real_port[0],
            write_root=root,
            unpack_dir=base / "runtime",
            env={"RA_CA_ADDR_LIST": pool},
        )
        with real:
            yield IOCHandle(real.prefix, root, root, real.port, real, kind="real")
        return
    root = tmp_path_factory.mktemp("ioc_data")
    with SimulatedIOC(prefix="adt:", write_root=root, port=_pool[0]) as proc:
        yield IOCHandle(proc.prefix, root, root, proc.port, proc)


_factory_turn = [0]


@pytest.fixture
def ioc_factory(tmp_path: Path):
    """``start(prefix=..., extra_args=...) -> IOCHandle``; every IOC is stopped afterwards."""
    if _external_prefix():
        pytest.skip("ioc_factory starts simulated IOCs; not available in external-IOC mode")
    started: list[SimulatedIOC] = []
    # start from the pool port after the one the previous test began with: an IOC is
    # not put on the port of the one just stopped, whose channels the CA clients of
    # this process are still searching for
    _factory_turn[0] = (_factory_turn[0] + 1) % (POOL_SIZE - 1)
    ports = _pool[1:]
    free = ports[_factory_turn[0] :] + ports[: _factory_turn[0]]

    def start(
        prefix: str = "adtx:", extra_args: tuple[str, ...] = (), port: int | None = None
    ) -> IOCHandle:
        if port is None:
            if not free:
                raise RuntimeError(f"ioc_factory: all {POOL_SIZE - 1} pool ports are in use")
            port = free.pop(0)
        root = tmp_path / f"ioc_{port}"
        proc = SimulatedIOC(prefix=prefix, write_root=root, port=port, extra_args=extra_args)
        started.append(proc)
        proc.start()
        return IOCHandle(prefix, root, root, port, proc)

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def ca(ioc):
    """Synchronous CA access to the session IOC (caproto threading client)."""
    from ioc_helpers import CA

    client = CA(ioc.prefix)
    yield client
    client.close()


@pytest.fixture
def cam(ca):
    """The session IOC's cam, set to small fast Single images (64 x 48 UInt8 LinearRamp).

    Every plugin is disabled first so tests start from a known wiring.
    """
    # no put-callback: on ADCore it would wait for an acquisition still running
    ca.put("cam1:Acquire", 0, wait=False)
    for prefix in (
        "image1:",
        "HDF1:",
        "Stats1:",
        "ROI1:",
        "Proc1:",
        "Over1:",
        "Trans1:",
        "CC1:",
        "CB1:",
        "TIFF1:",
        "JPEG1:",
        "netCDF1:",
        "Pva1:",
    ):
        ca.put(prefix + "EnableCallbacks", 0)
        ca.put(prefix + "NDArrayPort", "SIM1")
    settings = {
        "ImageMode": "Single",
        "NumImages": 1,
        "AcquireTime": 0.001,
        "AcquirePeriod": 0.0,
        "SizeX": 64,
        "SizeY": 48,
        "MinX": 0,
        "MinY": 0,
        "BinX": 1,
        "BinY": 1,
        "ReverseX": 0,
        "ReverseY": 0,
        "DataType": "UInt8",
        "ColorMode": "Mono",
        "SimMode": "LinearRamp",
        "Gain": 1.0,
        "GainX": 1.0,
        "GainY": 1.0,
        "Offset": 0.0,
        "Noise": 0.0,
        "ArrayCallbacks": 1,
        "WaitForPlugins": "No",
        "GainRed": 1.0,
        "GainGreen": 1.0,
        "GainBlue": 1.0,
        "PeakStartX": 1,
        "PeakStartY": 1,
        "PeakWidthX": 10,
        "PeakWidthY": 20,
        "PeakNumX": 1,
        "PeakNumY": 1,
        "PeakStepX": 1,
        "PeakStepY": 1,
        "PeakVariation": 0.0,
    }
    for name, value in settings.items():
        ca.put("cam1:" + name, value)
    for prefix in ("HDF1:", "TIFF1:", "JPEG1:"):
        ca.put(prefix + "Capture", 0)
        ca.put(prefix + "AutoSave", "No")
        ca.put(prefix + "TempSuffix", "")
        ca.put(prefix + "LazyOpen", "No")
        ca.put(prefix + "FileWriteMode", "Single")
    ca.wait_value("cam1:Acquire_RBV", 0)
    ca.wait_value("cam1:AcquireBusy", 0)
    return ca


def acquire(ca, n: int = 1, timeout: float = 20.0) -> int:
    """Acquire (Single: n=1; Multiple: NumImages=n) and wait until the cam is done.

    Returns the cam ArrayCounter after the acquisition.
    """
    from ioc_helpers import wait_for

    before = ca.get("cam1:ArrayCounter_RBV")
    # no put-callback (it would complete only when acquisition ends, as ADCore's)
    ca.put("cam1:Acquire", 1, wait=False)
    wait_for(lambda: ca.get("cam1:ArrayCounter_RBV") >= before + n, timeout, "frames")
    ca.wait_value("cam1:Acquire_RBV", 0, timeout=timeout)
    ca.wait_value("cam1:AcquireBusy", 0, timeout=timeout)
    return before + n
