"""``adtoolkit xml ...``: through ``main([...])`` and as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adtoolkit.cli import main
from adtoolkit.xml import (
    Attributes,
    Dataset,
    HardLink,
    Layout,
    nexus_layout_from_attributes,
    parse_attributes,
    parse_layout,
    validate,
)

DATA = Path(__file__).parent / "data" / "xml"
SRC = Path(__file__).resolve().parents[1] / "src"
TEST1 = [
    DATA / "ADSimDetector_iocHDF5Test_test1_attributes.xml",
    DATA / "ADSimDetector_iocHDF5Test_test1_layout.xml",
]
TEST2 = [
    DATA / "ADSimDetector_iocHDF5Test_test2_attributes.xml",
    DATA / "ADSimDetector_iocHDF5Test_test2_layout.xml",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "adtoolkit", "xml", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


# --------------------------------------------------------------------------- validate


def test_validate_subprocess_errors_exit_1_with_file_line_messages():
    proc = run_cli("validate", *map(str, TEST2))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 6
    assert (
        f"{TEST2[1]}:169: error: dataset /entry/sample/name: NDAttribute 'SampleTitle'"
        in proc.stderr
    )
    assert proc.stdout == ""


def test_validate_subprocess_clean_files_exit_0():
    proc = run_cli("validate", str(DATA / "ADSimDetector_iocSimDetector_hdf5_layout_minimal.xml"))
    assert proc.returncode == 0, proc.stderr
    assert "1 file(s): no errors" in proc.stderr


def test_validate_warnings_pass_unless_strict(capsys):
    assert main(["xml", "validate", *map(str, TEST1)]) == 0
    err = capsys.readouterr().err
    assert f"{TEST1[1]}:23: warning: hardlink" in err and "2 warning(s)" in err
    assert main(["xml", "validate", "--strict", *map(str, TEST1)]) == 1
    assert main(["xml", "validate", "--quiet", *map(str, TEST1)]) == 0
    assert capsys.readouterr().err.count("warning") == 2  # only from the non-quiet run


def test_validate_cross_checks_case(tmp_path, capsys):
    attrs = tmp_path / "a.xml"
    Attributes().pv("Temp", "P:T").write(attrs)
    layout = tmp_path / "l.xml"
    layout.write_text(
        '<hdf5_layout>\n<group name="g">\n<dataset name="d" source="detector"/>\n'
        '<dataset name="t" source="ndattribute" ndattribute="temp"/>\n</group>\n</hdf5_layout>\n'
    )
    assert main(["xml", "validate", str(attrs), str(layout)]) == 1
    err = capsys.readouterr().err
    assert f"{layout}:4: error: dataset /g/t: NDAttribute 'temp' is not defined" in err
    assert "'Temp'" in err
    # the same layout alone: names are not checked
    assert main(["xml", "validate", str(layout)]) == 0


def test_validate_unreadable_and_hostile_files(tmp_path, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("<Attributes>\n<Attribute")
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Attributes/>')
    assert main(["xml", "validate", str(bad), str(xxe), str(tmp_path / "missing.xml")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: error: " in err
    assert f"{xxe}:1: error: external entity 'x'" in err
    assert "missing.xml:0: error: " in err and "cannot read XML file" in err


# --------------------------------------------------------------------------- attributes

ATTRIBUTES_YAML = """\
attributes:
  - {name: Temp, pv: "IOC:temp", dbrtype: DBR_DOUBLE, description: sample temperature}
  - {name: Counter, param: ARRAY_COUNTER, datatype: INT}
  - {name: Pi, function: myAttrFunct1, arg: PI}
  - {name: Beamline, const: BL-1}
  - {name: Raw, type: EPICS_PV, source: "IOC:raw"}
"""

ATTRIBUTES_TOML = """\
[[attributes]]
name = "Temp"
pv = "IOC:temp"
dbrtype = "DBR_DOUBLE"
description = "sample temperature"

[[attributes]]
name = "Counter"
param = "ARRAY_COUNTER"
datatype = "INT"

[[attributes]]
name = "Pi"
function = "myAttrFunct1"
arg = "PI"

[[attributes]]
name = "Beamline"
const = "BL-1"

[[attributes]]
name = "Raw"
type = "EPICS_PV"
source = "IOC:raw"
"""

EXPECTED_ATTRIBUTES = (
    Attributes()
    .pv("Temp", "IOC:temp", "DBR_DOUBLE", "sample temperature")
    .param("Counter", "ARRAY_COUNTER", "INT")
    .function("Pi", "myAttrFunct1", "PI")
    .const("Beamline", "BL-1")
    .pv("Raw", "IOC:raw")
)


@pytest.mark.parametrize("suffix, text", [(".yaml", ATTRIBUTES_YAML), (".toml", ATTRIBUTES_TOML)])
def test_attributes_from_spec_printed_by_subprocess(tmp_path, suffix, text):
    spec = tmp_path / f"attrs{suffix}"
    spec.write_text(text)
    proc = run_cli("attributes", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert parse_attributes(proc.stdout) == EXPECTED_ATTRIBUTES


def test_attributes_from_spec_written_with_o(tmp_path, capsys):
    spec = tmp_path / "attrs.yml"
    spec.write_text(ATTRIBUTES_YAML)
    out = tmp_path / "out.xml"
    assert main(["xml", "attributes", str(spec), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert parse_attributes(out) == EXPECTED_ATTRIBUTES


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "attributes:\n  - {name: T, param: GAIN, datatype: FLOAT}\n",
            "attribute 'T': datatype 'FLOAT'",
        ),
        ("attributes:\n  - {name: T, pv: P, param: Q}\n", "give only one of pv, param"),
        ("attributes:\n  - {name: T, pv: P, colour: red}\n", "unknown key(s) colour"),
        ("attributes:\n  - {name: T}\n", "needs a source"),
        ("attributes:\n  - {name: T, const: a}\n  - {name: T, const: b}\n", "already defined"),
        ("attributes: [\n", "invalid YAML"),
    ],
)
def test_attributes_spec_errors_exit_2_and_write_nothing(tmp_path, capsys, text, message):
    spec = tmp_path / "attrs.yaml"
    spec.write_text(text)
    out = tmp_path / "out.xml"
    assert main(["xml", "attributes", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(spec) in err
    assert not out.exists()


# --------------------------------------------------------------------------- layout

LAYOUT_YAML = """\
detector_data_destination: Dest
groups:
  - name: entry
    nx_class: NXentry
    attributes: {title: my run, started: {ndattribute: Temp, when: OnFileOpen}}
    groups:
      - name: instrument
        nx_class: NXinstrument
        datasets:
          - {name: data, source: detector, det_default: true, attributes: {signal: 1}}
          - {name: temperature, ndattribute: Temp, when: OnFileClose}
          - {name: pixel_size, value: [0.172, 0.172]}
      - name: meta
        ndattr_default: true
      - name: data
        nx_class: NXdata
        hardlinks: {data: /entry/instrument/data}
"""


def test_layout_from_yaml_spec(tmp_path, capsys):
    spec = tmp_path / "layout.yaml"
    spec.write_text(LAYOUT_YAML)
    attrs = tmp_path / "attrs.xml"
    Attributes().pv("Temp", "P:T").pv("Dest", "P:D", "DBR_STRING").write(attrs)
    assert main(["xml", "layout", str(spec), "--attributes", str(attrs)]) == 0
    layout = parse_layout(capsys.readouterr().out)
    assert layout.globals[0].ndattribute == "Dest"
    entry = layout.find("/entry")
    assert [(a.name, a.value, a.ndattribute, a.when) for a in entry.attributes] == [
        ("NX_class", "NXentry", None, None),
        ("title", "my run", None, None),
        ("started", None, "Temp", "OnFileOpen"),
    ]
    assert layout.find("/entry/instrument/data").det_default
    temperature = layout.find("/entry/instrument/temperature")
    assert (temperature.source, temperature.ndattribute, temperature.when) == (
        "ndattribute",
        "Temp",
        "OnFileClose",
    )
    pixel = layout.find("/entry/instrument/pixel_size")
    assert (pixel.source, pixel.value, pixel.type) == ("constant", "0.172,0.172", "float")
    assert layout.find("/entry/meta").ndattr_default
    assert layout.find("/entry/data/data") == HardLink("data", "/entry/instrument/data")


def test_layout_spec_with_unknown_ndattribute_is_not_written(tmp_path, capsys):
    spec = tmp_path / "layout.yaml"
    spec.write_text(LAYOUT_YAML)
    attrs = tmp_path / "attrs.xml"
    Attributes().pv("temp", "P:T").pv("Dest", "P:D").write(attrs)
    out = tmp_path / "layout.xml"
    assert main(["xml", "layout", str(spec), "--attributes", str(attrs), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        "<layout>:" in err and "NDAttribute 'Temp' is not defined" in err and "not written" in err
    )
    assert not out.exists()


def test_layout_toml_spec_nexus_from_attributes_relative_path(tmp_path):
    Attributes().param("Gain", "GAIN", "DOUBLE").pv("Ring", "S:current").write(
        tmp_path / "attrs.xml"
    )
    spec = tmp_path / "layout.toml"
    spec.write_text('[nexus]\nattributes = "attrs.xml"\nplacement = {Ring = "detector"}\n')
    proc = run_cli("layout", "layout.toml", "-o", "out.xml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    layout = parse_layout(tmp_path / "out.xml")
    assert isinstance(layout.find("/entry/instrument/detector/Gain"), Dataset)
    assert isinstance(layout.find("/entry/instrument/detector/Ring"), Dataset)


def test_layout_nexus_option_subprocess():
    attrs = DATA / "ADSimDetector_iocSimDetector_simDetectorAttributes.xml"
    proc = run_cli("layout", "--nexus", str(attrs))
    assert proc.returncode == 0, proc.stderr
    layout = parse_layout(proc.stdout)
    assert layout == nexus_layout_from_attributes(parse_attributes(attrs))
    assert layout.find("/entry/data/data").target == "/entry/instrument/detector/data"


def test_layout_default_option(capsys):
    assert main(["xml", "layout", "--default"]) == 0
    assert parse_layout(capsys.readouterr().out) == Layout.default()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "groups:\n  - {name: g, datasets: [{name: d, source: detectors}]}\n",
            "source must be detector",
        ),
        (
            "groups:\n  - {name: g, datasets: [{name: d}, {name: d}]}\n",
            "already has a member named 'd'",
        ),
        ("groups:\n  - {name: g, colour: red}\n", "unknown key(s) colour"),
        ("nexus: {attributes: nothere.xml}\n", "cannot read XML file"),
        ("groups: {name: g}\n", "expected a list"),
    ],
)
def test_layout_spec_errors(tmp_path, capsys, text, message):
    spec = tmp_path / "layout.yaml"
    spec.write_text(text)
    assert main(["xml", "layout", str(spec)]) == 2
    assert message in capsys.readouterr().err


def test_layout_needs_exactly_one_source(capsys):
    with pytest.raises(SystemExit) as info:
        main(["xml", "layout", "spec.yaml", "--default"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_validate_ophyd_option(capsys):
    minimal = str(DATA / "ADSimDetector_iocSimDetector_hdf5_layout_minimal.xml")
    assert main(["xml", "validate", minimal]) == 0
    assert "/entry/data/data" not in capsys.readouterr().err
    assert main(["xml", "validate", "--ophyd", "--strict", minimal]) == 1
    assert (
        f"{minimal}:1: warning: /entry/data/data is not the detector data"
        in capsys.readouterr().err
    )


def test_layout_help_shows_an_example_spec():
    proc = run_cli("layout", "--help")
    assert proc.returncode == 0
    assert "nexus: {attributes: attrs.xml" in proc.stdout
    # the example in the help is a working spec
    example = proc.stdout.split("or\n", 1)[1]
    import yaml

    from adtoolkit.xml.spec import layout_from_spec

    layout = layout_from_spec(yaml.safe_load(example))
    assert layout.find("/entry/instrument/temperature").ndattribute == "Temp"
    assert validate(layout, ["Temp"], ophyd=True) == []
