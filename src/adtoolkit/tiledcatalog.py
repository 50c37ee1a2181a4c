"""bluesky runs in tiled: an embedded server, a writer that names what went wrong.

databroker 2 is built on tiled, and bluesky's ``TiledWriter``
(bluesky-tiled-plugins >= 2.0.2, which maps the ``AD_HDF5`` spec to
``application/x-hdf5``) ingests runs into a tiled server.  The server reads
detector files itself, and only below its *readable storage*; a file
elsewhere, or a server that is down, otherwise surfaces as an HTTP status
deep inside the RunEngine.  Here both become a :class:`TiledCatalogError`
naming the server and the path.

``EmbeddedTiled`` is the in-process recipe (``adtoolkit demo --catalog tiled``,
README "tiled"): tiled's ``SimpleTiledServer`` with its SQLite catalog in a
temporary directory, the IOC's write root (as the workstation sees it) as
readable storage, and a ``TiledWriter`` to subscribe to the RunEngine::

    with EmbeddedTiled(readable=["/data/ioc"]) as tiled:
        RE.subscribe(tiled.writer)
        (uid,) = RE(count([det], num=2))
        frames = tiled.client[uid]["primary"]["det_image"].read()

Install with ``pip install 'adtoolkit[tiled]'``; databroker 1 stays the
default catalog elsewhere.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class TiledCatalogError(RuntimeError):
    """tiled cannot be reached or cannot read a run's file; the message names server and path."""


def server_name(uri: str) -> str:
    """``uri`` without its query (the api_key stays out of messages and logs)."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def connect(uri: str, *, api_key: str | None = None) -> Any:
    """A tiled client for ``uri``; a server that does not answer raises TiledCatalogError."""
    import httpx
    from tiled.client import from_uri

    try:
        return from_uri(uri, api_key=api_key)
    except (httpx.TransportError, OSError) as exc:
        raise TiledCatalogError(f"tiled server {server_name(uri)} is not reachable: {exc}") from exc


def document_path(name: str, doc: dict) -> str | None:
    """The file a resource or stream_resource document points at (as the server will read it)."""
    if name == "resource":
        root, rel = doc.get("root") or "", doc.get("resource_path", "")
        return posixpath.join(root, rel.lstrip("/")) if root else rel
    if name == "stream_resource":
        uri = str(doc.get("uri", ""))
        return urlsplit(uri).path if uri.startswith("file:") else uri
    return None


def _inside(path: str, roots: Iterable[str]) -> bool:
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


class CheckedWriter:
    """A ``TiledWriter`` whose failures name the tiled server and the file.

    ``readable``: the server's readable storage, when known (an embedded
    server): a resource outside it is refused before it is sent, with a
    message saying so, instead of an HTTP 4xx/5xx from the server.
    """

    def __init__(self, client: Any, *, readable: Iterable[str | Path] | None = None) -> None:
        from bluesky_tiled_plugins import TiledWriter

        self.server = server_name(str(client.context.api_uri))
        self.readable = None if readable is None else [str(r) for r in readable]
        # batch_size=1: every event reaches the server as it comes (live reading)
        self._writer: Callable[[str, dict], Any] = TiledWriter(client, batch_size=1)
        self._last_path: str | None = None

    def __call__(self, name: str, doc: dict) -> Any:
        path = document_path(name, doc)
        if path is not None:
            self._last_path = path
            if self.readable is not None and not _inside(path, self.readable):
                raise TiledCatalogError(
                    f"tiled server {self.server} cannot read {path}: it is outside the "
                    f"server's readable storage ({', '.join(self.readable)})"
                )
        try:
            return self._writer(name, doc)
        except TiledCatalogError:
            raise
        except Exception as exc:
            import httpx

            if isinstance(exc, httpx.TransportError):
                raise TiledCatalogError(
                    f"tiled server {self.server} is not reachable: {exc}"
                ) from exc
            where = f" (file {self._last_path})" if self._last_path else ""
            raise TiledCatalogError(
                f"tiled server {self.server} refused the {name} document{where}: {exc}"
            ) from exc


class EmbeddedTiled:
    """tiled's ``SimpleTiledServer`` in this process, with a checked ``TiledWriter``.

    ``readable``: directories the server may read detector files from (the
    IOC's write root as this machine sees it).  ``directory``: where the SQLite
    catalog and logs go (default: a temporary directory removed on close).
    """

    def __init__(
        self, readable: Iterable[str | Path], *, directory: str | Path | None = None
    ) -> None:
        from tiled.server import SimpleTiledServer

        self.readable = [str(Path(r).resolve()) for r in readable]
        for root in self.readable:
            Path(root).mkdir(parents=True, exist_ok=True)
        self.server = SimpleTiledServer(directory=directory, readable_storage=self.readable)
        try:
            self.uri = self.server.uri
            self.client = connect(self.uri)
            self.writer = CheckedWriter(self.client, readable=self.readable)
        except BaseException:
            self.server.close()
            raise

    @property
    def name(self) -> str:
        return server_name(self.uri)

    def __getitem__(self, uid: str) -> Any:
        return self.client[uid]

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> EmbeddedTiled:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
