"""The README tells the truth: quickstart commands, command reference, messages.

The quickstart commands themselves are run, literally, in a fresh virtual
environment by tests/test_readme_quickstart.py.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from adtoolkit import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SRC = ROOT / "src" / "adtoolkit"


def _section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(2)


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
