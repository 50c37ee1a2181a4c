"""The README tells the truth: quickstart commands, command reference, messages.

The quickstart commands themselves are run, literally, in a fresh virtual
environment by tests/test_readme_quickstart.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from pathlib import Path

import pytest

from adtoolkit import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SRC = ROOT / "src" / "adtoolkit"


def _section(title: str) -> str:
    """Text under the heading ``title`` up to the next heading of the same or a higher
    level (lines inside code fences are never headings)."""
    lines = README.read_text().splitlines(keepends=True)
    level, body, fenced = None, [], False
    for line in lines:
        heading = re.match(r"^(#+) (.*)$", line) if not fenced else None
        if line.startswith("```"):
            fenced = not fenced
        if level is None:
            if heading and heading.group(2).strip() == title:
                level = len(heading.group(1))
            continue
        if heading and len(heading.group(1)) <= level:
            break
        body.append(line)
    assert level is not None, f"README has no section {title!r}"
    return "".join(body)


def quickstart_commands() -> tuple[str, str]:
    """The two quickstart lines: (set-up + demo, set-up + tests)."""
    blocks = re.findall(r"```bash\n(.*?)```", _section("Quickstart"), re.S)
    assert len(blocks) == 2, blocks
    lines = [block.strip() for block in blocks]
    for line in lines:
        assert "\n" not in line, f"quickstart command must be one line: {line!r}"
    return lines[0], lines[1]


def _table(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # drop the header


def test_quickstart_is_two_single_lines():
    demo, tests = quickstart_commands()
    assert demo.endswith("&& adtoolkit demo")
    assert tests.endswith("&& python3 -m pytest -q")
    # both start from nothing: a fresh venv in the clone
    for line in (demo, tests):
        assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
        assert " pip install -e ." in line or ' pip install -e ".[test]"' in line


def test_ci_runs_the_readme_test_command():
    _, tests = quickstart_commands()
    test_command = tests.rsplit("&&", 1)[1].strip()
    assert test_command == "python3 -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test_command
    assert 'python3 -m pip install -e ".[test]"' in ci


def _reference() -> list[list[str]]:
    """Each documented command line as words, e.g. ['adtoolkit', 'xml', 'validate', ...]."""
    return [shlex.split(row[0].strip("`")) for row in _table(_section("Commands"))]


def _subparser(parser, name: str):
    for action in parser._actions:  # argparse has no public API for this
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return None


def test_command_reference_lists_every_command():
    assert {words[1] for words in _reference()} == set(cli.COMMANDS)
    assert all(words[0] == "adtoolkit" for words in _reference())


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_documented_options_exist(command):
    parser = cli.build_parser()
    top = _subparser(parser, command)
    if top.get_default("_module") is None:
        pytest.skip(f"{cli.COMMANDS[command][0]} is not on this branch yet")
    lines = [words for words in _reference() if words[1] == command]
    assert lines
    for words in lines:
        sub = top
        for word in words[2:]:  # descend into sub-actions (adtoolkit xml validate ...)
            sub = _subparser(sub, word) or sub
        known = {opt for action in sub._actions for opt in action.option_strings}
        options = {w.strip("[]").split("=")[0] for w in words if w.lstrip("[").startswith("--")}
        assert options <= known, f"README documents {options - known} for {' '.join(words[:3])}"


def test_troubleshooting_messages_exist_in_the_code():
    """Every message in the table is one the code can print.

    Placeholders (``<path>``) stand for the variable part; every literal fragment
    around them must occur in the sources.
    """
    sources = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    rows = _table(_section("Troubleshooting"))
    assert rows
    for message, cause, fix in rows:
        assert cause and fix
        text = message.strip("`")
        fragments = re.split(r"<[^>]*>|: |; ", text)
        fragments = [f.strip() for f in fragments if len(f.strip()) >= 4]
        assert fragments, message
        for fragment in fragments:
            assert fragment in sources, f"{fragment!r} (from {message}) not found in src/"


def test_external_ioc_variables_are_documented():
    section = _section("Running the tests against an external IOC")
    for name in ("ADTOOLKIT_IOC_PREFIX", "ADTOOLKIT_IOC_WRITE_ROOT", "ADTOOLKIT_READ_ROOT"):
        assert f"`{name}`" in section


@pytest.fixture
def own_ioc(request):
    """An IOC for this test alone: the external one in external-IOC mode, else a fresh
    simulated one, so a count here cannot disturb the tests sharing the session IOC."""
    if os.environ.get("ADTOOLKIT_IOC_PREFIX"):
        return request.getfixturevalue("ioc")
    return request.getfixturevalue("ioc_factory")(prefix="snip:")


@pytest.mark.ioc
def test_bluesky_session_snippet_takes_images(own_ioc):
    """The IPython profile snippet, pointed at the test IOC, really counts."""
    ioc = own_ioc
    code = re.search(
        r"```python\n(.*?)```", _section("In a bluesky session (IPython profile)"), re.S
    )
    code = code.group(1)
    replacements = {
        'databroker.catalog["my_beamline"]': "databroker.temp().v2",
        '"13SIM1:"': repr(ioc.prefix),
        '"/data/adsim"': repr(str(ioc.write_root)),
        '"/tmp/adtoolkit/adsim"': repr(str(ioc.read_root)),
    }
    for old, new in replacements.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    RE, bp, cat, det = (namespace[k] for k in ("RE", "bp", "cat", "det"))
    try:
        (uid,) = RE(bp.count([det], num=2))
        images = cat[-1].primary.read()["det_image"]
        assert cat[-1].metadata["start"]["uid"] == uid
        assert images.shape[0] == 2 and images.ndim >= 3
    finally:
        det.destroy()


@pytest.mark.ioc
def test_ci_fixture_snippet_runs_a_plan(tmp_path):
    """The README's conftest.py fixture works in a project of its own (a subprocess)."""
    import subprocess
    import sys

    code = re.search(r"```python\n(.*?)```", _section("In CI"), re.S).group(1)
    (tmp_path / "conftest.py").write_text(code)
    (tmp_path / "test_plan.py").write_text(
        "def test_count(det):\n"
        "    import databroker\n"
        "    from bluesky import RunEngine, plans as bp\n"
        "    RE = RunEngine({})\n"
        "    cat = databroker.temp().v2\n"
        "    RE.subscribe(cat.v1.insert)\n"
        "    (uid,) = RE(bp.count([det], num=2))\n"
        "    assert cat[uid].primary.read()['det_image'].shape[0] == 2\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_CA_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
