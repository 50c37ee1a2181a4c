"""install(): pure unit logic against ophyd fake devices (make_fake_device).

A tiny stand-in for the IOC reacts to writes the way ADCore does (readNDAttributesFile,
NDFileHDF5's layout loading):
NDAttributesFile containing ``<Attributes>`` is inline XML, otherwise a path;
XMLFileName containing ``<?xml`` is inline, otherwise a path.  IOC-backed tests
come later, once the simulated IOC's HDF5 writer has landed.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from ophyd.areadetector.cam import SimDetectorCam
from ophyd.areadetector.plugins import HDF5Plugin_V34
from ophyd.sim import make_fake_device

from adtoolkit.xml import (
    Attributes,
    Layout,
    ValidationError,
    nexus_layout_from_attributes,
    parse_attributes,
    parse_layout,
)
from adtoolkit.xml.install import InstallError, install, install_attributes, install_layout

IOC_DIR = "/ioc/xml"


class FakeIOC:
    """Reacts to NDAttributesFile / XMLFileName writes like the real IOC would."""

    def __init__(self, local_dir: Path, hdf5, cam=None):
        self.local_dir = local_dir
        self.hdf5 = hdf5
        self.seen: list[str] = []
        hdf5.nd_attributes_file.subscribe(self.on_attributes, run=False)
        hdf5.xml_file_name.subscribe(self.on_layout, run=False)
        if cam is not None:
            cam.nd_attributes_file.subscribe(self.on_cam_attributes, run=False)

    def read(self, value: str):
        path = PurePosixPath(value)
        if path.parent != PurePosixPath(IOC_DIR):
            return None
        local = self.local_dir / path.name
        return local if local.exists() else None

    def on_attributes(self, value, **kwargs):
        self.seen.append(value)
        source = value if "<Attributes>" in value else self.read(value)
        if source is None:
            self.hdf5.nd_attributes_status.sim_put(1)
            return
        try:
            parse_attributes(source)
        except ValueError:
            self.hdf5.nd_attributes_status.sim_put(2)
            return
        self.hdf5.nd_attributes_status.sim_put(0)

    def on_cam_attributes(self, value, **kwargs):
        self.seen.append(value)

    def on_layout(self, value, **kwargs):
        self.seen.append(value)
        source = value if "<?xml" in value else self.read(value)
        if source is None:
            self.hdf5.xml_valid.sim_put(0)
            self.hdf5.xml_error_msg.sim_put("XML description file cannot be opened")
            return
        try:
            parse_layout(source)
        except ValueError:
            self.hdf5.xml_valid.sim_put(0)
            self.hdf5.xml_error_msg.sim_put("XML description file parser error")
            return
        self.hdf5.xml_valid.sim_put(1)
        self.hdf5.xml_error_msg.sim_put("")


@pytest.fixture
def hdf5():
    return make_fake_device(HDF5Plugin_V34)("T:HDF1:", name="hdf5")


@pytest.fixture
def cam():
    return make_fake_device(SimDetectorCam)("T:cam1:", name="cam")


@pytest.fixture
def ioc(tmp_path, hdf5, cam):
    return FakeIOC(tmp_path, hdf5, cam)


ATTRS = Attributes().pv("Temp", "T:temp", "DBR_DOUBLE").param("Gain", "GAIN", "DOUBLE")


def fresh() -> Attributes:
    """A new copy of ATTRS for tests that change it."""
    return parse_attributes(ATTRS.to_xml())


def test_file_mode_writes_locally_and_puts_the_ioc_path(tmp_path, hdf5, cam, ioc):
    layout = nexus_layout_from_attributes(ATTRS)
    done = install(
        attributes=ATTRS,
        on=hdf5,
        layout=layout,
        hdf5=hdf5,
        ioc_dir=IOC_DIR,
        local_dir=tmp_path,
        settle=0,
    )
    assert done["attributes"].pv_value == "/ioc/xml/attributes.xml"
    assert done["layout"].pv_value == "/ioc/xml/layout.xml"
    assert hdf5.nd_attributes_file.get() == "/ioc/xml/attributes.xml"
    assert hdf5.xml_file_name.get() == "/ioc/xml/layout.xml"
    assert parse_attributes(tmp_path / "attributes.xml") == ATTRS
    assert parse_layout(tmp_path / "layout.xml") == layout


def test_inline_mode_puts_compact_xml_the_ioc_recognises(hdf5, ioc):
    small = Attributes().param("G", "GAIN", "DOUBLE")
    done = install_attributes(small, hdf5, inline=True, settle=0)
    value = hdf5.nd_attributes_file.get()
    assert value == done.pv_value
    assert value.startswith("<Attributes>") and "\n" not in value
    assert parse_attributes(value) == small
    layout = Layout.default()
    install_layout(layout, hdf5, settle=0)  # no ioc_dir: inline by default
    value = hdf5.xml_file_name.get()
    assert value.startswith("<?xml") and "\n" not in value and len(value) < 2048
    assert parse_layout(value) == layout


def test_inline_attributes_too_long_for_the_pv(hdf5, ioc):
    with pytest.raises(
        InstallError, match=r"inline attributes XML is \d+ characters; the PV holds 255"
    ):
        install_attributes(fresh().pv("Long", "X" * 200), hdf5, inline=True, settle=0)
    assert ioc.seen == []


def test_inline_attributes_drop_root_xml_attributes(hdf5, ioc):
    attrs = parse_attributes(
        '<Attributes xmlns:xsi="x"><Attribute name="a" type="CONST" source="1"/></Attributes>'
    )
    install_attributes(attrs, hdf5, inline=True, settle=0)
    assert hdf5.nd_attributes_file.get().startswith("<Attributes>")


def test_ioc_refusing_the_attributes_file_raises_with_its_status(tmp_path, hdf5, ioc):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # written to a directory the IOC does not see as IOC_DIR: "File not found"
    with pytest.raises(InstallError, match="NDAttributesStatus='File not found'.*ioc_dir"):
        install_attributes(ATTRS, hdf5, ioc_dir="/other", local_dir=elsewhere, settle=0)
    assert (elsewhere / "attributes.xml").exists()


def test_ioc_refusing_the_layout_raises_with_xml_error_msg(tmp_path, hdf5, ioc):
    with pytest.raises(
        InstallError, match="XMLErrorMsg_RBV='XML description file cannot be opened'"
    ):
        install_layout(Layout.default(), hdf5, ioc_dir="/nowhere", local_dir=tmp_path, settle=0)


def test_invalid_models_are_never_sent(hdf5, ioc):
    bad = fresh()
    bad["Gain"].dbrtype = "DBR_FOO"
    bad["Gain"].type = "EPICS_PV"
    with pytest.raises(ValidationError, match="unknown dbrtype"):
        install_attributes(bad, hdf5, inline=True, settle=0)
    with pytest.raises(ValidationError, match="'temp' is not defined"):
        install(
            attributes=ATTRS,
            on=hdf5,
            layout=nexus_layout_from_attributes(Attributes().pv("temp", "x")),
            hdf5=hdf5,
            settle=0,
        )
    assert ioc.seen == []


def test_other_attributes_extend_the_cross_check(hdf5, ioc):
    layout = nexus_layout_from_attributes(Attributes().pv("Temp", "x").pv("StatsMean", "y"))
    done = install(
        attributes=ATTRS,
        on=hdf5,
        layout=layout,
        hdf5=hdf5,
        other_attributes=["StatsMean"],
        inline=True,
        settle=0,
    )
    assert set(done) == {"attributes", "layout"}


def test_cam_without_status_signal_still_installs(tmp_path, cam, ioc):
    install_attributes(ATTRS, cam, ioc_dir=IOC_DIR, local_dir=tmp_path, settle=0)
    assert cam.nd_attributes_file.get() == "/ioc/xml/attributes.xml"
    assert ioc.seen == ["/ioc/xml/attributes.xml"]


def test_signals_can_be_given_as_a_mapping(hdf5, ioc):
    signals = {
        "xml_file_name": hdf5.xml_file_name,
        "xml_valid": hdf5.xml_valid,
        "xml_error_msg": hdf5.xml_error_msg,
    }
    install_layout(Layout.default(), signals, settle=0)
    assert parse_layout(hdf5.xml_file_name.get()) == Layout.default()


def test_macros_are_written_first(hdf5, ioc):
    order = []
    hdf5.nd_attributes_macros.subscribe(
        lambda value, **k: order.append(("macros", value)), run=False
    )
    hdf5.nd_attributes_file.subscribe(lambda value, **k: order.append(("file", value)), run=False)
    install_attributes(Attributes().pv("T", "$(P)temp"), hdf5, inline=True, macros="P=T:", settle=0)
    assert order == [("macros", "P=T:"), ("file", hdf5.nd_attributes_file.get())]


def test_undefined_macro_is_refused_before_writing(tmp_path, hdf5, ioc):
    attrs = Attributes().pv("T", "$(P)temp").pv("U", "${ID}gap").pv("V", "$(D=X:)v")
    with pytest.raises(InstallError, match=r"macro\(s\) ID used by the attributes but not defined"):
        install_attributes(
            attrs, hdf5, ioc_dir=IOC_DIR, local_dir=tmp_path, macros="P=T:", settle=0
        )
    assert ioc.seen == []
    assert list(tmp_path.iterdir()) == []


def test_macros_without_ndattributesmacros_warn(hdf5, ioc):
    from adtoolkit.xml.install import InstallWarning

    with pytest.warns(InstallWarning, match="holds a macro"):
        install_attributes(Attributes().pv("T", "$(P)temp"), hdf5, inline=True, settle=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attributes": ATTRS}, "no cam/plugin"),
        ({"layout": Layout.default()}, "no HDF5 plugin"),
    ],
)
def test_install_argument_errors(kwargs, message):
    with pytest.raises(InstallError, match=message):
        install(**kwargs)


def test_file_mode_needs_both_directories(tmp_path, hdf5):
    with pytest.raises(InstallError, match="needs both ioc_dir and local_dir"):
        install_layout(Layout.default(), hdf5, inline=False, ioc_dir=IOC_DIR, settle=0)
    with pytest.raises(InstallError, match="is not a directory"):
        install_layout(
            Layout.default(), hdf5, ioc_dir=IOC_DIR, local_dir=tmp_path / "none", settle=0
        )


def test_windows_ioc_directory():
    from adtoolkit.xml.install import _ioc_path

    assert _ioc_path("C:\\epics\\xml", "layout.xml") == "C:\\epics\\xml\\layout.xml"
    assert _ioc_path("/epics/xml/", "layout.xml") == "/epics/xml/layout.xml"


def test_file_mode_from_the_devices_path_templates(tmp_path, hdf5):
    # ophyd's FileStoreBase attribute names: IOC-side and workstation-side directories
    hdf5.write_path_template = IOC_DIR
    hdf5.read_path_template = str(tmp_path)
    ioc = FakeIOC(tmp_path, hdf5)
    done = install_layout(Layout.default(), hdf5, inline=False, settle=0)
    assert done == type(done)("/ioc/xml/layout.xml", tmp_path / "layout.xml")
    assert ioc.seen == ["/ioc/xml/layout.xml"]
    assert parse_layout(tmp_path / "layout.xml") == Layout.default()


def test_layout_warnings_are_shown_but_installed(hdf5, ioc):
    from adtoolkit.xml import Dataset, Group
    from adtoolkit.xml.install import InstallWarning

    layout = Layout().add(Group("detector").add(Dataset.detector("data1")))
    with pytest.warns(InstallWarning, match="/entry/data/data is not the detector data"):
        install_layout(layout, hdf5, settle=0)
    assert parse_layout(hdf5.xml_file_name.get()) == layout
