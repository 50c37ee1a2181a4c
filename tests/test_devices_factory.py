"""make_detector argument checking and connection errors (no IOC needed)."""

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
    assert any(n.startswith("adtoolkit-nowhere:image1:ArrayData") for n in err.value.unconnected)
