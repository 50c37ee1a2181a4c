"""The asset documents of one file plugin (resource and datum), composed in one place.

bluesky learns where externally stored data is from two documents: a *resource* names
a file and how to read it (``spec``, ``root`` + ``resource_path``, ``resource_kwargs``)
and a *datum* names a part of it (``datum_kwargs``); an event holds the datum's id.
:class:`AssetDocuments` makes both and queues them until the RunEngine collects them
(``collect_asset_docs``), so the file plugin says only *when*: a new file, a new point.
A new kind of document (e.g. event-model's StreamResource/StreamDatum) belongs here.

Datum ids are ``{resource uid}/{point}``, as ophyd makes them; points count from 0 in
every resource, because an ``AD_HDF5`` datum has no frame offset: point ``p`` means
frames ``[p*fpp, (p+1)*fpp)`` of the resource's file.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = ["AssetDocuments"]


class AssetDocuments:
    """Resource and datum documents of one file plugin, queued until collected."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.resource_uid: str | None = None
        #: datums made for the current resource
        self.datums_in_file = 0
        self._points: Iterator[int] = itertools.count()

    def reset(self) -> None:
        """Forget everything (a new stage)."""
        self._queue.clear()
        self.resource_uid = None
        self._new_count()

    def _new_count(self) -> None:
        self._points = itertools.count()
        self.datums_in_file = 0

    def new_resource(self, root: str, resource_path: str, resource_kwargs: dict[str, Any]) -> str:
        """Queue the resource of a newly opened file; later datums point into it."""
        self.resource_uid = str(uuid.uuid4())
        self._new_count()
        self._queue.append(
            (
                "resource",
                {
                    "spec": self.spec,
                    "root": root,
                    "resource_path": resource_path,
                    "resource_kwargs": resource_kwargs,
                    "path_semantics": "posix",
                    "uid": self.resource_uid,
                },
            )
        )
        return self.resource_uid

    def drop_unclaimed_resource(self) -> None:
        """The current file closes with no datum: its resource, if not yet collected,
        is not emitted (no document names a file that holds no frame of the run)."""
        if self.datums_in_file:
            return
        uid = self.resource_uid
        self._queue = deque(
            d for d in self._queue if not (d[0] == "resource" and d[1]["uid"] == uid)
        )

    def close_resource(self) -> None:
        """No current resource (the file closed); the next datum needs a new one."""
        self.resource_uid = None
        self._new_count()

    def datum(self, datum_kwargs: dict[str, Any] | None = None) -> str:
        """Queue the datum of the next point of the current resource; its id."""
        if self.resource_uid is None:
            raise RuntimeError("a datum needs a resource (an open file)")
        point = next(self._points)
        self.datums_in_file = point + 1
        kwargs: dict[str, Any] = {"point_number": point}
        kwargs.update(datum_kwargs or {})
        datum_id = f"{self.resource_uid}/{point}"
        self._queue.append(
            ("datum", {"resource": self.resource_uid, "datum_id": datum_id, "datum_kwargs": kwargs})
        )
        return datum_id

    def collect(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The queued documents, oldest first, each once."""
        while self._queue:
            yield self._queue.popleft()
