"""Collect the bluesky documents of one run into columns the NeXus writer can use.

The exporter is fed documents in every form bluesky produces them: single
``event`` / ``datum`` documents from a live RunEngine, ``event_page`` /
``datum_page`` from databroker, or a whole catalog entry.  ``RunCollector`` (an
event_model ``DocumentRouter``) normalises all of them into one ``RunDocuments``
per run, with each stream's data as columns ordered by ``seq_num``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import event_model

Document = tuple[str, dict]


@dataclass
class Stream:
    """One event stream (``primary``, ``baseline``, a monitor, ...)."""

    name: str
    descriptors: list[dict] = field(default_factory=list)
    seq_num: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    data: dict[str, list] = field(default_factory=dict)
    timestamps: dict[str, list] = field(default_factory=dict)

    @property
    def data_keys(self) -> dict[str, dict]:
        keys: dict[str, dict] = {}
        for desc in self.descriptors:
            keys.update(desc.get("data_keys", {}))
        return keys

    @property
    def hints(self) -> dict[str, dict]:
        hints: dict[str, dict] = {}
        for desc in self.descriptors:
            hints.update(desc.get("hints", {}))
        return hints

    @property
    def configuration(self) -> dict[str, dict]:
        conf: dict[str, dict] = {}
        for desc in self.descriptors:
            conf.update(desc.get("configuration", {}))
        return conf

    def __len__(self) -> int:
        return len(self.seq_num)

    def column(self, key: str) -> list:
        return self.data[key]

    def sort(self) -> None:
        """Order rows by seq_num (pages from several descriptors may interleave)."""
        order = sorted(range(len(self.seq_num)), key=self.seq_num.__getitem__)
        if order == list(range(len(order))):
            return
        self.seq_num = [self.seq_num[i] for i in order]
        self.time = [self.time[i] for i in order]
        for cols in (self.data, self.timestamps):
            for k, v in cols.items():
                cols[k] = [v[i] for i in order]


@dataclass
class RunDocuments:
    """Everything the exporter needs from one run."""

    start: dict
    stop: dict | None = None
    streams: dict[str, Stream] = field(default_factory=dict)
    resources: dict[str, dict] = field(default_factory=dict)
    datums: dict[str, dict] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return self.start["uid"]

    @property
    def primary(self) -> Stream | None:
        return self.streams.get("primary")


class RunCollector(event_model.DocumentRouter):
    """Accumulate the documents of consecutive runs; ``runs`` holds the completed ones."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunDocuments] = []
        self.current: RunDocuments | None = None
        self._descriptor_stream: dict[str, Stream] = {}

    def start(self, doc: dict) -> None:
        if self.current is not None:
            raise ValueError(
                f"run {self.current.uid} has no stop document before the start of run {doc['uid']}"
            )
        self.current = RunDocuments(start=dict(doc))
        self._descriptor_stream = {}

    def _run(self, name: str) -> RunDocuments:
        if self.current is None:
            raise ValueError(f"'{name}' document outside a run (no start document before it)")
        return self.current

    def descriptor(self, doc: dict) -> None:
        run = self._run("descriptor")
        name = doc.get("name", "primary")
        stream = run.streams.setdefault(name, Stream(name))
        stream.descriptors.append(doc)
        self._descriptor_stream[doc["uid"]] = stream

    def event_page(self, doc: dict) -> None:
        self._run("event_page")
        stream = self._descriptor_stream[doc["descriptor"]]
        n = len(doc["seq_num"])
        before = len(stream)
        stream.seq_num.extend(doc["seq_num"])
        stream.time.extend(doc["time"])
        for key, values in doc["data"].items():
            column = stream.data.setdefault(key, [None] * before)
            column.extend(values)
        for key, values in doc["timestamps"].items():
            column = stream.timestamps.setdefault(key, [None] * before)
            column.extend(values)
        # keys that this page lacks (a second descriptor with other keys)
        for cols in (stream.data, stream.timestamps):
            for column in cols.values():
                if len(column) < before + n:
                    column.extend([None] * (before + n - len(column)))

    def event(self, doc: dict) -> None:
        # single events arrive one by one from a live RunEngine: append them
        # directly instead of letting DocumentRouter wrap each in a page
        self._run("event")
        stream = self._descriptor_stream[doc["descriptor"]]
        before = len(stream)
        stream.seq_num.append(doc["seq_num"])
        stream.time.append(doc["time"])
        for cols, values in ((stream.data, doc["data"]), (stream.timestamps, doc["timestamps"])):
            for key, value in values.items():
                column = cols.get(key)
                if column is None:
                    column = cols[key] = [None] * before
                column.append(value)
            if len(values) != len(cols):
                for column in cols.values():
                    if len(column) == before:
                        column.append(None)

    def datum(self, doc: dict) -> None:
        self._run("datum").datums[doc["datum_id"]] = doc

    def resource(self, doc: dict) -> None:
        self._run("resource").resources[doc["uid"]] = doc

    def datum_page(self, doc: dict) -> None:
        run = self._run("datum_page")
        for datum in event_model.unpack_datum_page(doc):
            run.datums[datum["datum_id"]] = datum

    def stop(self, doc: dict) -> None:
        run = self._run("stop")
        run.stop = dict(doc)
        for stream in run.streams.values():
            stream.sort()
        self.runs.append(run)
        self.current = None


def collect_runs(documents: Iterable[Document]) -> list[RunDocuments]:
    """Split a flat stream of ``(name, doc)`` pairs into completed runs."""
    collector = RunCollector()
    for name, doc in documents:
        collector(name, doc)
    if collector.current is not None:
        raise ValueError(f"run {collector.current.uid} has no stop document")
    return collector.runs


def iter_document_streams(source: Any) -> Iterator[Iterable[Document]]:
    """Yield one iterable of ``(name, doc)`` pairs per item of ``source``.

    ``source`` may be a databroker v2 run (``BlueskyRun``), an iterable of
    ``(name, doc)`` pairs (one or several runs in a row), or a list of either.
    """
    if _is_run(source):
        yield _run_documents(source)
        return
    items = list(source) if not isinstance(source, (str, bytes)) else None
    if items is None:
        raise TypeError(f"cannot export {source!r}: expected documents or databroker runs")
    if items and _is_document_pair(items[0]):
        yield items
        return
    for item in items:
        if _is_run(item):
            yield _run_documents(item)
        else:
            yield item


def _is_document_pair(obj: Any) -> bool:
    return (
        isinstance(obj, tuple)
        and len(obj) == 2
        and isinstance(obj[0], str)
        and isinstance(obj[1], dict)
    )


def _is_run(obj: Any) -> bool:
    return hasattr(obj, "documents") and hasattr(obj, "metadata") and callable(obj.documents)


def _run_documents(run: Any) -> Iterable[Document]:
    return run.documents(fill="no")
