"""make_detector: argument checking, which signals it connects, connection errors.

Most tests need no IOC; the ``ioc``-marked ones use the session simulated IOC.
"""

from __future__ import annotations

import pytest

from adtoolkit.devices import (
    ConfigurationError,
    ConnectionTimeout,
    HDF5FileStore,
    ImagePlugin,
    StatsPlugin,
    UnknownPluginError,
    make_detector,
)
from adtoolkit.devices.factory import parse_plugin_name
from adtoolkit.paths import PathTemplateError


def test_bare_string_plugin_works():
    det = make_detector("X:", name="det", plugins="hdf1", write_path="/tmp", connect=False)
    assert isinstance(det.hdf1, HDF5FileStore)
    assert det.hdf1.prefix == "X:HDF1:"
    assert not hasattr(det, "image1")


def test_plugin_names_map_to_adcore_suffixes():
    assert parse_plugin_name("hdf1")[2] == "HDF1:"
    assert parse_plugin_name("image2")[2] == "image2:"
    assert parse_plugin_name("Stats3")[0] == "stats3"
    assert parse_plugin_name("Stats3")[2] == "Stats3:"
    assert parse_plugin_name("roi1")[2] == "ROI1:"
    assert parse_plugin_name("TIFF1")[2] == "TIFF1:"
    assert parse_plugin_name("jpeg1")[2] == "JPEG1:"


def test_custom_suffix_mapping():
    det = make_detector("X:", plugins={"image1": "IMG:", "stats1": "S1:"}, connect=False)
    assert isinstance(det.image1, ImagePlugin) and det.image1.prefix == "X:IMG:"
    assert isinstance(det.stats1, StatsPlugin) and det.stats1.prefix == "X:S1:"


@pytest.mark.parametrize("bad", ["hdf", "hfd1", "overlay1", "", 3, "image_1"])
def test_unknown_plugin_names_are_named(bad):
    with pytest.raises(UnknownPluginError) as err:
        make_detector("X:", plugins=("image1", bad), connect=False)
    assert repr(bad) in str(err.value)


def test_no_shared_mutable_defaults():
    a = make_detector("X:", name="a", write_path="/tmp", connect=False)
    b = make_detector("X:", name="b", write_path="/tmp", connect=False)
    a.hdf1.stage_sigs["zlevel"] = 3
    a.stage_sigs["cam.acquire_time"] = 0.5
    assert "zlevel" not in b.hdf1.stage_sigs
    assert "cam.acquire_time" not in b.stage_sigs
    assert type(a) is not type(b)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "has space:"}, "prefix"),
        ({"prefix": 5}, "prefix"),
        ({"name": "my det"}, "name"),
        ({"frames_per_point": 0}, "frames_per_point"),
        ({"frames_per_point": 1.5}, "frames_per_point"),
        ({"frames_per_point": True}, "frames_per_point"),
        ({"naming": "random"}, "naming"),
        ({"lazy_open": "yes"}, "lazy_open"),
        ({"cam": "pilatus"}, "cam"),
        ({"connection_timeout": -1}, "connection_timeout"),
        ({"file_template": "%d%s"}, "file_template"),
        ({"file_template": "%s%s%s_%d"}, "file_template"),
        ({"write_path": None}, "write_path"),
        ({"plugins": 42}, "plugins"),
        ({"plugins": ("image1", "image1")}, "twice"),
        ({"connect": "some"}, "connect"),
        ({"connect": 1}, "connect"),
    ],
)
def test_bad_configuration_fails_before_any_pv_is_created(kwargs, fragment, monkeypatch):
    import ophyd.signal

    created = []
    orig = ophyd.signal.EpicsSignalBase.__init__

    def spy(self, *a, **k):
        created.append(a)
        orig(self, *a, **k)

    monkeypatch.setattr(ophyd.signal.EpicsSignalBase, "__init__", spy)
    args = {"prefix": "X:", "write_path": "/tmp/data"}
    args.update(kwargs)
    prefix = args.pop("prefix")
    with pytest.raises(ConfigurationError) as err:
        make_detector(prefix, **args)
    assert fragment in str(err.value)
    assert created == []


def test_bad_path_template_is_reported():
    with pytest.raises(PathTemplateError, match="%c"):
        make_detector("X:", write_path="/data/%c/", connect=False)


def test_attributes_of_the_wrong_type_are_refused_before_connecting():
    """attributes/layout must be adtoolkit.xml models: a string is refused with a
    clear message before any PV is created (connect=False would otherwise succeed)."""
    with pytest.raises(
        ConfigurationError, match=r"attributes must be an adtoolkit\.xml\.Attributes"
    ):
        make_detector("X:", write_path="/tmp", attributes="<Attributes/>", connect=False)


def test_unreachable_ioc_names_unconnected_pvs_within_the_timeout():
    with pytest.raises(ConnectionTimeout) as err:
        make_detector(
            "adtoolkit-nowhere:", plugins="image1", write_path="/tmp", connection_timeout=1.0
        )
    msg = str(err.value)
    assert "did not connect within 1 s" in msg
    assert "adtoolkit-nowhere:" in msg
    assert any(
        n.startswith("adtoolkit-nowhere:cam1:Acquire_RBV / adtoolkit-nowhere:cam1:Acquire ")
        for n in err.value.unconnected
    )
    # the image plugin's port records are among those checked, so connected up front
    assert any(n.startswith("adtoolkit-nowhere:image1:NDArrayPort") for n in err.value.unconnected)
    # records nothing uses stay lazy, as in ophyd: not waited for, not named
    assert not any("image1:ArrayData" in n for n in err.value.unconnected)


def test_unreachable_ioc_with_connect_all_names_every_record():
    with pytest.raises(ConnectionTimeout) as err:
        make_detector(
            "adtoolkit-nowhere:",
            plugins="image1",
            connect="all",
            connection_timeout=0.5,
        )
    assert any(n.startswith("adtoolkit-nowhere:image1:ArrayData") for n in err.value.unconnected)
    assert any(n.startswith("adtoolkit-nowhere:cam1:Gain_RBV") for n in err.value.unconnected)


def test_walking_all_signals_of_an_unreachable_ioc_names_them():
    """A walk over every signal connects the lazy ones at once, within make_detector's
    connection_timeout, and names all that did not connect (not just the first)."""
    det = make_detector(
        "adtoolkit-nowhere:", plugins="image1", connect=False, connection_timeout=0.5
    )
    with pytest.raises(ConnectionTimeout) as err:
        list(det.walk_signals(include_lazy=True))
    assert "within 0.5 s" in str(err.value)
    assert any(n.startswith("adtoolkit-nowhere:image1:ArrayData") for n in err.value.unconnected)
    assert any(n.startswith("adtoolkit-nowhere:cam1:Gain_RBV") for n in err.value.unconnected)


# ---- which signals make_detector connects (no IOC: connect=False, then the lists) ----


def test_used_signals_cover_staging_triggering_and_reading():
    from adtoolkit.devices.connect import used_signal_names
    from adtoolkit.devices.filestore import FILE_SETTINGS

    det = make_detector("X:", name="det", write_path="/tmp", connect=False)
    det.cam.stage_sigs["gain"] = 2.0  # a user's stage setting is connected too
    used = set(used_signal_names(det))
    expected = {
        # port validation
        "cam.port_name",
        "hdf1.port_name",
        "hdf1.nd_array_port",
        "hdf1.plugin_type",
        "image1.port_name",
        "image1.nd_array_port",
        "image1.plugin_type",
        # triggering
        "cam.acquire",
        "cam.acquire_busy",
        "cam.wait_for_plugins",
        "hdf1.num_captured",
        # priming
        "cam.size.size_x",
        "cam.bin_y",
        "hdf1.array_size.width",
        "hdf1.time_stamp",
        # ophyd's default plugin stage_sigs, and the user's
        "image1.enable",
        "image1.blocking_callbacks",
        "cam.gain",
        # configuration read by the RunEngine (Kind.config on the cam)
        "cam.acquire_time",
        "cam.manufacturer",
        "cam.model",
    } | {f"hdf1.{name}" for name in FILE_SETTINGS}
    assert expected <= used, sorted(expected - used)
    # what nothing uses stays lazy
    assert not {"image1.array_data", "cam.sim_mode", "hdf1.zlevel"} & used


def test_every_file_setting_written_on_stage_is_declared():
    from adtoolkit.devices.filestore import FILE_SETTINGS

    for naming in ("uuid", "epics"):
        det = make_detector("X:", name="det", write_path="/tmp", naming=naming, connect=False)
        written = set(det.hdf1._file_sigs())
        assert written <= set(FILE_SETTINGS) | set(det.hdf1.stage_sigs), written


def test_make_detector_creates_only_the_used_signals(monkeypatch):
    """connect=True creates (and waits for) exactly the used signals; nothing else."""
    from ophyd.signal import EpicsSignalBase

    import adtoolkit.devices.connect as connect_mod
    from adtoolkit.devices.connect import used_signal_names

    waited = {}

    def no_ioc(device, t0, timeout, poll):
        walk = list(device.walk_signals(include_lazy=False))
        waited["names"] = {w.dotted_name for w in walk}
        waited["epics"] = {w.dotted_name for w in walk if isinstance(w.item, EpicsSignalBase)}
        return 0.0

    monkeypatch.setattr(connect_mod, "_wait_connected", no_ioc)
    monkeypatch.setattr("adtoolkit.devices.factory.check_plugin_types", lambda det: None)
    det = make_detector("X:", name="det", write_path="/tmp", validate_ports=False)
    created = waited["names"]
    assert "image1.array_data" not in created
    assert set(used_signal_names(det)) <= created
    # no PV beyond them (ophyd's non-lazy, non-EPICS signals exist anyway)
    assert waited["epics"] <= set(used_signal_names(det)), waited["epics"] - set(
        used_signal_names(det)
    )


# ---- against the simulated IOC ----------------------------------------------------


@pytest.fixture
def fresh_det(ioc, tmp_path):
    made = []

    def make(**kwargs):
        det = make_detector(
            ioc.prefix,
            name="fdet",
            plugins=("hdf1", "image1"),
            write_path=str(ioc.write_root) + "/",
            read_path=str(ioc.read_root) + "/",
            **kwargs,
        )
        made.append(det)
        return det

    yield make
    for det in made:
        det.destroy()


@pytest.mark.ioc
def test_a_count_uses_no_signal_beyond_those_connected_up_front(fresh_det):
    """Every signal stage/trigger/read/unstage touches was connected concurrently by
    make_detector: none is created later (which would cost a serial lazy connect)."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    det = fresh_det()
    created = {w.dotted_name for w in det.walk_signals(include_lazy=False)}
    assert all(w.item.connected for w in det.walk_signals(include_lazy=False))
    assert "image1.array_data" not in created
    det.cam.size.size_x.set(64).wait(10)
    det.cam.size.size_y.set(48).wait(10)
    det.cam.acquire_time.set(0.001).wait(10)
    RunEngine({})(bp.count([det], num=2))
    det.kickoff(2).wait(10)
    det.complete().wait(10)
    assert len(list(det.collect())) == 2
    after = {w.dotted_name for w in det.walk_signals(include_lazy=False)}
    assert after == created, sorted(after - created)


@pytest.mark.ioc
def test_signals_not_in_use_connect_on_first_access(fresh_det, ioc):
    import epics

    det = fresh_det()
    assert "sim_mode" not in {w.dotted_name for w in det.cam.walk_signals()}
    assert det.cam.sim_mode.get(as_string=True) == epics.caget(
        ioc.prefix + "cam1:SimMode_RBV", as_string=True, timeout=10
    )


@pytest.mark.ioc
def test_connect_all_and_wait_for_all_signals(fresh_det):
    det = fresh_det(connect="all")
    assert all(w.item.connected for w in det.walk_signals(include_lazy=False))
    assert det.image1.array_data.connected and det.cam.gain.connected
    lazy = fresh_det()
    lazy.wait_for_connection(all_signals=True, timeout=10)  # concurrently, not one by one
    signals = [w.item for w in lazy.walk_signals(include_lazy=False)]
    assert len(signals) == len(list(det.walk_signals(include_lazy=False)))
    assert all(s.connected for s in signals)
    walked = fresh_det()
    assert all(w.item.connected for w in walked.walk_signals(include_lazy=True))
    assert len(list(walked.walk_signals())) == len(signals)


@pytest.mark.ioc
def test_cam_stage_sigs_are_applied_and_restored(fresh_det, ioc):
    """The cam stages like the plugins: its stage_sigs are written, then restored."""
    import epics

    det = fresh_det()
    pv = ioc.prefix + "cam1:Gain_RBV"
    before = epics.caget(pv, timeout=10, use_monitor=False)
    det.cam.stage_sigs["gain"] = before + 1.5
    det.stage()
    try:
        assert epics.caget(pv, timeout=10, use_monitor=False) == pytest.approx(before + 1.5)
    finally:
        det.unstage()
    assert epics.caget(pv, timeout=10, use_monitor=False) == pytest.approx(before)
