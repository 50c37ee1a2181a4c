"""Assemble the simulated IOC from an instance definition and serve it over CA.

An *instance definition* plays the role of an iocBoot directory's st.cmd: the
prefix, the cam port, and every plugin with its port name, record prefix and
NDArrayPort wiring (see ``iocs/adsim/instance.toml``).  :data:`DEFAULT_INSTANCE`
is the ADSimDetector ``EXAMPLE_commonPlugins.cmd`` set that ophyd's
``SimDetector`` and apstools' factory expect.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adtoolkit.ioc.devsup import bind_records
from adtoolkit.ioc.driver import NDArrayDriver, PortRegistry
from adtoolkit.ioc.ndarray import DATA_TYPES
from adtoolkit.ioc.params import Publisher, set_channel_now
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.plugins import PLUGIN_CLASSES
from adtoolkit.ioc.pvgroups import port_group
from adtoolkit.ioc.records import ADCORE_DEFAULT, adcore_version, serves_legacy
from adtoolkit.ioc.simdetector import SimDetector

__all__ = ["DEFAULT_INSTANCE", "PortRegistry", "SimDetectorIOC", "load_instance"]

log = logging.getLogger(__name__)

#: the plugin set of ADSimDetector's EXAMPLE_commonPlugins.cmd, with its port names
DEFAULT_INSTANCE: dict[str, Any] = {
    "prefix": "ad:",
    "cam": {
        "suffix": "cam1:",
        "port": "SIM1",
        "max_size_x": 1024,
        "max_size_y": 1024,
        "data_type": "UInt8",
    },
    "plugins": [
        {
            "type": "NDStdArrays",
            "suffix": "image1:",
            "port": "Image1",
            "ndarray_port": "SIM1",
            "enabled": True,
            "nelm": 12_000_000,  # NELEMENTS of EXAMPLE_commonPlugins.cmd
        },
        {
            "type": "NDFileHDF5",
            "suffix": "HDF1:",
            "port": "FileHDF1",
            "ndarray_port": "SIM1",
            "xmlsize": 2048,  # XMLSIZE macro of commonPlugins.cmd's dbLoadRecords
        },
        {"type": "NDStats", "suffix": "Stats1:", "port": "STATS1", "ndarray_port": "SIM1"},
        {"type": "NDROI", "suffix": "ROI1:", "port": "ROI1", "ndarray_port": "SIM1"},
        {"type": "NDProcess", "suffix": "Proc1:", "port": "PROC1", "ndarray_port": "SIM1"},
        {"type": "NDOverlay", "suffix": "Over1:", "port": "OVER1", "ndarray_port": "SIM1"},
        {"type": "NDTransform", "suffix": "Trans1:", "port": "TRANS1", "ndarray_port": "SIM1"},
        {"type": "NDColorConvert", "suffix": "CC1:", "port": "CC1", "ndarray_port": "SIM1"},
        {"type": "NDCircularBuff", "suffix": "CB1:", "port": "CB1", "ndarray_port": "SIM1"},
        {"type": "NDFileTIFF", "suffix": "TIFF1:", "port": "FileTIFF1", "ndarray_port": "SIM1"},
        # reads dark and flat-field images into Proc1 (commonPlugins.cmd)
        {
            "type": "NDFileTIFF",
            "suffix": "Proc1:TIFF:",
            "port": "PROC1TIFF",
            "ndarray_port": "SIM1",
        },
        {"type": "NDFileJPEG", "suffix": "JPEG1:", "port": "FileJPEG1", "ndarray_port": "SIM1"},
        {
            "type": "NDFileNetCDF",
            "suffix": "netCDF1:",
            "port": "FileNetCDF1",
            "ndarray_port": "SIM1",
        },
        {"type": "NDPva", "suffix": "Pva1:", "port": "PVA1", "ndarray_port": "SIM1"},
    ],
}


def load_instance(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read an instance definition (TOML), filled in from the defaults."""
    instance = copy.deepcopy(DEFAULT_INSTANCE)
    if path is None:
        return instance
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = Path(path)
    if path.is_dir():
        path = path / "instance.toml"
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
    instance["prefix"] = data.get("prefix", instance["prefix"])
    instance["cam"].update(data.get("cam", {}))
    if "plugins" in data:
        instance["plugins"] = data["plugins"]
    instance["base_dir"] = str(path.parent)
    for i, plugin in enumerate(instance["plugins"]):
        for key in ("type", "suffix", "port"):
            if key not in plugin:
                raise ValueError(f"{path}: plugins[{i}] has no {key!r}")
        if plugin["type"] not in PLUGIN_CLASSES:
            raise ValueError(
                f"{path}: plugins[{i}] type {plugin['type']!r} is not one of {sorted(PLUGIN_CLASSES)}"
            )
    return instance


def padded(values: Any, count: int) -> Any:
    """``values`` zero-padded to ``count`` elements (what rsrv sends for a
    subscription whose count exceeds the array's current length)."""
    missing = count - len(values)
    if missing <= 0:
        return values
    if isinstance(values, np.ndarray):
        return np.concatenate([values, np.zeros(missing, values.dtype)])
    if isinstance(values, bytes | bytearray):
        return bytes(values) + b"\0" * missing
    return list(values) + [type(values[0])() if len(values) else 0] * missing


def make_context_class() -> type:
    """caproto's asyncio server Context, with two changes.

    - Subscription updates are padded to the count the client asked for:
      caproto would announce that count with a shorter payload, which makes
      libca (pyepics) read past the message.
    - A refused put-with-callback (WriteNotifyRequest) is answered as rsrv
      answers it: a WriteNotifyResponse carrying ECA_PUTFAIL.  caproto would
      send a CA_PROTO_ERROR instead, which libca also routes to the put
      callback but caproto's own clients drop (their write waits until its
      timeout).  A plain put (no callback) still gets CA_PROTO_ERROR, as from rsrv.
    - Channel creation is answered in bursts: a client connecting to every PV
      sends thousands of CreateChanRequests at once, and caproto answers each
      with its own socket write and wake-up.  Consecutive requests already
      received are answered together in one write (their replies in request
      order); any other command first flushes what is pending, so replies
      never overtake each other.
    - Client sockets get TCP_NODELAY, as rsrv sets on every circuit.  asyncio
      sets it only on sockets created with proto=IPPROTO_TCP, which caproto's
      are not, so each put completion waited for Nagle's ~40 ms delayed ACK.
    """
    import caproto as ca
    from caproto.asyncio.server import Context, VirtualCircuit
    from caproto.server.common import DisconnectedCircuit, LoopExit

    batchable = (ca.CreateChanRequest, ca.HostNameRequest, ca.ClientNameRequest)

    class BurstCircuit(VirtualCircuit):
        async def command_queue_loop(self) -> None:
            self.write_event.set()
            queue = self.command_queue
            pending = None  # a command taken while batching, not batchable
            try:
                while True:
                    command = pending if pending is not None else await queue.get()
                    pending = None
                    if not isinstance(command, batchable):
                        response = await self._command_queue_iteration(command)
                        if response is not None:
                            await self.send(*response)
                        await self._wake_new_command()
                        continue
                    replies: list[Any] = []
                    while True:
                        response = await self._command_queue_iteration(command)
                        if response:
                            replies.extend(response)
                        if queue.empty() or len(replies) > 2000:
                            break
                        command = queue.get_nowait()
                        if not isinstance(command, batchable):
                            pending = command
                            break
                    if replies:
                        await self.send(*replies)
                    await self._wake_new_command()
            except DisconnectedCircuit:
                await self._on_disconnect()
                self.circuit.disconnect()
                await self.context.circuit_disconnected(self)
            except (asyncio.CancelledError, LoopExit):
                pass
            except RuntimeError:
                if not asyncio.get_running_loop().is_closed():
                    raise

        async def _process_command(self, command: Any) -> Any:
            if isinstance(command, ca.WriteNotifyRequest):
                return await self._write_notify(command)
            return await super()._process_command(command)

        async def _write_notify(self, command: Any) -> list:
            chan, db_entry = self._get_db_entry_from_command(command)

            async def handle_write() -> None:
                status: Any = ca.CAStatus.ECA_NORMAL
                try:
                    result = await db_entry.auth_write(
                        self.client_hostname,
                        self.client_username,
                        command.data,
                        command.data_type,
                        command.metadata,
                        user_address=self.circuit.address,
                    )
                    if result not in (None, True):
                        status = result
                except Exception as exc:
                    self.log.info("put to %s refused: %s", chan.name, exc)
                    status = ca.CAStatus.ECA_PUTFAIL
                try:
                    await self.send(
                        chan.write(ioid=command.ioid, status=status, data_count=db_entry.length)
                    )
                finally:
                    self.write_event.set()

            self.write_event.clear()
            await self._start_write_task(handle_write)
            return []

    class PaddingContext(Context):
        CircuitClass = BurstCircuit

        async def tcp_handler(self, client, addr):
            sock = client.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await super().tcp_handler(client, addr)

        async def _subscription_queue_send(self, sub_spec, sub, metadata, values, flags):
            count = sub.data_count
            if count and not isinstance(values, str) and hasattr(values, "__len__"):
                values = padded(values, count)
            await super()._subscription_queue_send(sub_spec, sub, metadata, values, flags)

    return PaddingContext


def _macro_overrides(definition: Mapping[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    """Record fields that st.cmd sets through dbLoadRecords macros (XMLSIZE)."""
    if "xmlsize" in definition:
        return (("NDAttributesFile", "nelm", int(definition["xmlsize"])),)
    return ()


class SimDetectorIOC:
    """The whole IOC: drivers, their record groups, and the CA server."""

    def __init__(
        self,
        prefix: str | None = None,
        instance: Mapping[str, Any] | None = None,
        write_root: str | os.PathLike | None = None,
        adcore: str | None = None,
    ) -> None:
        instance = copy.deepcopy(dict(instance or DEFAULT_INSTANCE))
        #: the ADCore release whose records are served: R3-14's by default; an
        #: older one (``--adcore 3.4``) adds the records ophyd's and apstools'
        #: classes of that time name (PoolMaxBuffers, FileNumber_Sync, ...)
        self.adcore = adcore or str(instance.get("adcore", ADCORE_DEFAULT))
        self.legacy = serves_legacy(self.adcore)
        self.prefix = prefix if prefix is not None else instance.get("prefix", "ad:")
        self.write_root = Path(write_root).resolve() if write_root else None
        self.publisher = Publisher()
        self.registry = PortRegistry()
        self.pvdb: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}

        cam_def = instance["cam"]
        data_type = cam_def.get("data_type", "UInt8")
        if isinstance(data_type, str):
            data_type = DATA_TYPES.index(data_type)
        self.cam = SimDetector(
            cam_def.get("port", "SIM1"),
            self.publisher,
            max_size_x=int(cam_def.get("max_size_x", 1024)),
            max_size_y=int(cam_def.get("max_size_y", 1024)),
            data_type=data_type,
            seed=cam_def.get("seed"),
        )
        self._add(
            self.cam,
            cam_def.get("suffix", "cam1:"),
            self.cam.templates + ("NDCompat",),
            overrides=(("DataType_RBV", "record_fields", "mbbi"),),  # ophyd reads .DISA
        )

        self.base_dir = Path(instance.get("base_dir", "."))
        boot: list[tuple[str, Mapping[str, Any]]] = [
            (cam_def.get("suffix", "cam1:"), cam_def.get("records", {}))
        ]
        self.plugins: list[PluginDriver] = []
        for pdef in instance["plugins"]:
            boot.append((pdef["suffix"], pdef.get("records", {})))
            cls = PLUGIN_CLASSES[pdef["type"]]
            plugin = cls(
                pdef["port"],
                self.publisher,
                self.registry,
                ndarray_port=pdef.get("ndarray_port", self.cam.port_name),
                ndarray_addr=int(pdef.get("ndarray_addr", 0)),
                queue_size=int(pdef.get("queue_size", 20)),
                enabled=bool(pdef.get("enabled", False)),
                blocking=bool(pdef.get("blocking", False)),
                **cls.instance_options(pdef, self),
            )
            self._add(
                plugin,
                pdef["suffix"],
                plugin.all_templates(),
                plugin.addr_templates(),
                plugin.record_overrides() + _macro_overrides(pdef),
            )
            self.plugins.append(plugin)
        for suffix, records in boot:
            for name, value in records.items():
                self.boot_put(suffix + name, value)

    #: records whose relative values are files next to the instance definition
    FILE_RECORDS = ("NDAttributesFile", "XMLFileName")

    def boot_put(self, name: str, value: Any) -> None:
        """Write a record at boot, as ``dbpf`` in st.cmd: through the driver.

        ``$(P)`` expands to the IOC prefix; a relative NDAttributesFile or
        XMLFileName is taken relative to the instance definition's directory.
        """
        pvname = self.prefix + name
        channel = self.pvdb.get(pvname)
        if channel is None:
            raise ValueError(f"instance definition: no record {pvname}")
        if isinstance(value, str):
            value = value.replace("$(P)", self.prefix)
            if (
                name.rsplit(":", 1)[-1] in self.FILE_RECORDS
                and value
                and "<" not in value
                and not os.path.isabs(value)
            ):
                value = str((self.base_dir / value).resolve())
        binding = channel._adt_binding
        if binding is None or not channel._adt_spec.writable:
            raise ValueError(f"instance definition: {pvname} is not a driver setting")
        raw = binding.from_channel(value)
        binding.driver._write(binding.addr, binding.spec.drvinfo, raw)
        if not binding.spec.follows_driver:
            set_channel_now(channel, binding.to_channel(raw), time.time())

    def _add(
        self, driver: NDArrayDriver, suffix: str, templates, addr_templates=(), overrides=()
    ) -> None:
        driver.adcore_version = ".".join(str(n) for n in (adcore_version(self.adcore) + (0, 0))[:3])
        group_cls = port_group(
            type(driver).__name__, templates, addr_templates, overrides, legacy=self.legacy
        )
        group = group_cls(prefix=self.prefix + suffix)
        for name in group.pvdb:
            if name in self.pvdb:
                raise ValueError(f"PV {name} served twice (suffix {suffix!r})")
        bind_records(driver, group)
        self.pvdb.update(group.pvdb)
        self.groups[driver.port_name] = group
        if driver.port_name in self.registry:
            raise ValueError(f"port name {driver.port_name!r} used twice")
        self.registry[driver.port_name] = driver

    # -- running ------------------------------------------------------------
    def start_drivers(self) -> None:
        self.cam.start()
        for plugin in self.plugins:
            plugin.start()

    def stop_drivers(self) -> None:
        self.cam.stop()
        for plugin in self.plugins:
            plugin.stop()

    async def rate_task(self) -> None:
        """ArrayRate_RBV: the 1-second calc record of NDArrayBase."""
        last = {name: d.get("ARRAY_COUNTER") for name, d in self.registry.items()}
        while True:
            await asyncio.sleep(1.0)
            for name, driver in self.registry.items():
                n = driver.get("ARRAY_COUNTER")
                if "ARRAY_RATE" in driver.params:
                    driver.set("ARRAY_RATE", max(n - last[name], 0))
                    driver.call_callbacks(0)
                last[name] = n

    async def run(self, interfaces: list[str], ready: Callable[[int], None] | None = None) -> None:
        """Serve until cancelled."""
        await self.publisher.start()
        self.start_drivers()
        ctx = make_context_class()(self.pvdb, interfaces)

        async def startup_hook(async_lib: Any) -> None:
            await self.publisher.flush()
            if ready is not None:
                ready(ctx.ca_server_port)

        rate = asyncio.create_task(self.rate_task())
        try:
            await ctx.run(log_pv_names=False, startup_hook=startup_hook)
        finally:
            rate.cancel()
            self.stop_drivers()
            await self.publisher.stop()
