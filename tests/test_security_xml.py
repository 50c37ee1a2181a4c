"""Hostile XML: external entities (XXE), external DTDs, billion laughs, oversize input.

Layout and attributes XML reach the IOC from any CA client (a file name or the XML
itself in XMLFileName / NDAttributesFile), and reach the library from users' files.
Each hostile document must be refused with a clear message, quickly, without reading
the referenced file, without opening a connection, and the IOC must keep serving.
"""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

import epics
import pytest

TIMEOUT = 10.0


def _put(pv: str, value) -> None:
    ok = epics.caput(pv, value, wait=True, timeout=TIMEOUT, connection_timeout=TIMEOUT)
    assert ok == 1, f"caput {pv} failed ({ok})"


def _get(pv: str, as_string: bool = False):
    # read the record now: a monitor update may still be on its way after a put
    # completes (as with a real IOC's I/O Intr readbacks)
    pvobj = epics.get_pv(pv, connect=True, timeout=TIMEOUT)
    value = pvobj.get(
        as_string=as_string, timeout=TIMEOUT, use_monitor=False, count=pvobj.nelm or None
    )
    assert value is not None, f"caget {pv} failed"
    return value


@pytest.fixture
def secret(tmp_path):
    """A file whose content must never show up anywhere the client can see."""
    token = f"SECRET-{secrets.token_hex(8)}"
    path = tmp_path / "secret.txt"
    path.write_text(token)
    return path, token


@pytest.fixture
def trap_listener():
    """A loopback TCP listener: any connection to it means the parser fetched a URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/evil.dtd", srv
    srv.close()


def _connected(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def layout_xxe(secret_path: Path) -> str:
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE hdf5_layout [<!ENTITY x SYSTEM "file://{secret_path}">]>\n'
        '<hdf5_layout><group name="entry"><dataset name="&x;" source="detector" '
        'det_default="true"/></group></hdf5_layout>'
    )


def layout_external_dtd(url: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE hdf5_layout SYSTEM "{url}">\n'
        '<hdf5_layout><group name="entry"><dataset name="data" source="detector" '
        'det_default="true"/></group></hdf5_layout>'
    )


def layout_billion_laughs() -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE hdf5_layout [' + "".join(entities) + "]>\n"
        '<hdf5_layout><group name="&lol9;"><dataset name="data" source="detector" '
        'det_default="true"/></group></hdf5_layout>'
    )


def attributes_xxe(secret_path: Path) -> str:
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE Attributes [<!ENTITY x SYSTEM "file://{secret_path}">]>\n'
        '<Attributes><Attribute name="leak" type="CONST" source="&x;"/></Attributes>'
    )


def _oversize_layout(path: Path, size: int = 2 * 1024 * 1024) -> Path:
    body = '<group name="g"/>' * (size // 17 + 1)
    path.write_text(
        '<?xml version="1.0"?>\n<hdf5_layout><group name="entry">'
        '<dataset name="data" source="detector" det_default="true"/>'
        f"</group>{body}</hdf5_layout>"
    )
    return path


# -- through the IOC -------------------------------------------------------------------------


@pytest.mark.ioc
@pytest.mark.sim_only(
    "the simulated IOC's own XML hardening and messages (the real IOC's libxml2 says "
    "'XML description file parser error')"
)
class TestIOC:
    def _layout(self, ioc, value: str) -> tuple[int, str]:
        hdf = f"{ioc.prefix}HDF1:"
        _put(hdf + "XMLFileName", value)
        return _get(hdf + "XMLValid_RBV"), str(_get(hdf + "XMLErrorMsg_RBV", True))

    def _alive(self, ioc) -> None:
        valid, msg = self._layout(ioc, "")
        assert (valid, msg) == (1, "Default layout selected")

    def test_xxe_in_layout_is_refused_and_leaks_nothing(self, ioc, secret):
        path, token = secret
        valid, msg = self._layout(ioc, layout_xxe(path))
        assert valid == 0
        assert token not in msg
        assert "DTD" in msg or "entit" in msg.lower(), msg
        self._alive(ioc)

    def test_external_dtd_is_not_fetched(self, ioc, trap_listener):
        url, srv = trap_listener
        valid, msg = self._layout(ioc, layout_external_dtd(url))
        assert valid == 0, msg
        assert not _connected(srv), "the IOC fetched the external DTD"
        self._alive(ioc)

    def test_billion_laughs_in_layout_is_refused(self, ioc):
        xml = layout_billion_laughs()
        assert len(xml) < 2048  # fits XMLFileName (CHAR[2048])
        valid, msg = self._layout(ioc, xml)
        assert valid == 0 and msg, msg
        self._alive(ioc)

    def test_oversize_layout_file_is_refused(self, ioc):
        path = _oversize_layout(Path(ioc.write_root) / f"big-{secrets.token_hex(3)}.xml")
        try:
            valid, msg = self._layout(ioc, str(path))
        finally:
            path.unlink()
        assert valid == 0
        assert "bytes" in msg or "large" in msg.lower(), msg
        self._alive(ioc)

    def test_xxe_in_attributes_file_is_refused(self, ioc, secret):
        path, token = secret
        cam = f"{ioc.prefix}cam1:"
        _put(cam + "NDAttributesFile", attributes_xxe(path))
        try:
            assert _get(cam + "NDAttributesStatus") != 0
        finally:
            _put(cam + "NDAttributesFile", "")
        # the cam still produces frames
        before = _get(cam + "ArrayCounter_RBV")
        _put(cam + "ImageMode", 0)
        _put(cam + "AcquireTime", 0.001)
        _put(cam + "Acquire", 1)
        deadline = time.monotonic() + TIMEOUT
        while _get(cam + "ArrayCounter_RBV") <= before:
            assert time.monotonic() < deadline, "cam stopped producing frames"
            time.sleep(0.02)


# -- through the library (adtoolkit.xml) ---------------------------------------------------


def _library():
    from adtoolkit.xml import XMLSecurityError, parse, validate_files

    return XMLSecurityError, parse, validate_files


@pytest.mark.parametrize("kind", ["layout", "attributes"])
def test_library_refuses_xxe_without_reading_the_file(secret, kind):
    XMLSecurityError, parse, _ = _library()
    path, token = secret
    xml = layout_xxe(path) if kind == "layout" else attributes_xxe(path)
    with pytest.raises(XMLSecurityError) as info:
        parse(xml)
    assert token not in str(info.value)
    assert ":2:" in str(info.value)  # file:line of the DOCTYPE/ENTITY


def test_library_does_not_fetch_external_dtd(trap_listener):
    XMLSecurityError, parse, _ = _library()
    url, srv = trap_listener
    with pytest.raises(XMLSecurityError, match="external DTD"):
        parse(layout_external_dtd(url))
    assert not _connected(srv)


def test_library_refuses_billion_laughs():
    """Refused at the first declaration, before anything expands (a hang would time out)."""
    XMLSecurityError, parse, _ = _library()
    with pytest.raises(XMLSecurityError, match="entity declaration 'lol0'"):
        parse(layout_billion_laughs())


def test_library_refuses_oversize_file_before_reading_it(tmp_path):
    XMLSecurityError, parse, validate_files = _library()
    path = _oversize_layout(tmp_path / "big.xml")
    with pytest.raises(XMLSecurityError, match="limit"):
        parse(path)
    problems = validate_files([path])
    assert len(problems) == 1 and "limit" in problems[0].message
    assert problems[0].filename == str(path)


def test_library_refuses_deep_nesting():
    XMLSecurityError, parse, _ = _library()
    xml = "<hdf5_layout>" + '<group name="g">' * 5000 + "</group>" * 5000 + "</hdf5_layout>"
    with pytest.raises(XMLSecurityError, match="nested"):
        parse(xml)
