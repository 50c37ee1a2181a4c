"""The MongoDB catalog configuration shown in docs/scale.md is one databroker accepts.

No MongoDB server runs in CI (none is installable here), so the configuration cannot be
exercised end to end. What *can* fail without a server is checked: the YAML block parses,
intake resolves its driver to databroker's MongoDB catalog, the handler registry and
root_map arrive as configured, the ``catalog.v1.insert`` used in the doc exists, and a
catalog whose server is absent fails with pymongo's error naming the address instead of
hanging.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "scale.md"

intake = pytest.importorskip("intake", reason="intake comes with databroker 1.x")


def _mongo_yaml() -> str:
    text = DOC.read_text()
    section = text.split("### A shared catalog on MongoDB", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, f"{DOC}: no ```yaml block in the MongoDB section"
    return match.group(1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doc_yaml_selects_the_mongo_catalog(tmp_path):
    from databroker._drivers.mongo_normalized import BlueskyMongoCatalog

    path = tmp_path / "beamline.yml"
    path.write_text(_mongo_yaml())
    source = intake.open_catalog(str(path))["beamline"]
    assert isinstance(source, BlueskyMongoCatalog)
    handler = source._handler_registry["AD_HDF5"]
    assert f"{handler.__module__}.{handler.__name__}" == (
        "area_detector_handlers.handlers.AreaDetectorHDF5Handler"
    )
    assert source._root_map == {"/data": "/mnt/data"}
    assert callable(source.v1.insert)


def test_doc_yaml_against_an_absent_server_names_the_address(tmp_path):
    import pymongo.errors

    port = _closed_port()
    yaml_text = _mongo_yaml().replace("mongo.beamline.example:27017", f"127.0.0.1:{port}")
    yaml_text = re.sub(r"(mongodb://\S+)", r"\1?serverSelectionTimeoutMS=500", yaml_text)
    path = tmp_path / "beamline.yml"
    path.write_text(yaml_text)
    source = intake.open_catalog(str(path))["beamline"]
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError, match=f"127.0.0.1:{port}"):
        list(source)
