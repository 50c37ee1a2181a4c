"""A tiny caproto IOC serving PVs of every DBR type, for EPICS_PV attribute tests.

Run with EPICS_CAS_SERVER_PORT / EPICS_CAS_INTF_ADDR_LIST set by the test; prints
"READY" once the server is up.  PV names match the example attributes files
(13SIM1:cam1:..., prj:userCalc1) plus typed test PVs under ``adtattr:``.
"""

import sys

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty, run


class AttrIOC(PVGroup):
    AcquireTime = pvproperty(value=0.25, name="13SIM1:cam1:AcquireTime", record="ao")
    Temperature = pvproperty(value=21.5, name="13SIM1:cam1:Temperature", record="ai")
    FullFileName = pvproperty(
        value="/data/run_001.h5",
        name="13SIM1:HDF1:FullFileName_RBV",
        dtype=ChannelType.CHAR,
        max_length=512,
        report_as_string=True,
    )
    calc1 = pvproperty(value=1.5, name="prj:userCalc1", record="ai")
    calc2 = pvproperty(value=-2.5, name="prj:userCalc2", record="ai")
    as_short = pvproperty(value=-123, name="adtattr:short", dtype=ChannelType.INT)
    as_long = pvproperty(value=123456, name="adtattr:long", dtype=ChannelType.LONG)
    as_float = pvproperty(value=1.25, name="adtattr:float", dtype=ChannelType.FLOAT)
    as_double = pvproperty(value=3.5, name="adtattr:double", dtype=ChannelType.DOUBLE)
    as_enum = pvproperty(
        value="Two",
        name="adtattr:enum",
        dtype=ChannelType.ENUM,
        enum_strings=["One", "Two", "Three"],
    )
    as_char = pvproperty(value=65, name="adtattr:char", dtype=ChannelType.CHAR, max_length=1)
    as_string = pvproperty(value="hello world", name="adtattr:string", dtype=ChannelType.STRING)

    @AcquireTime.startup
    async def AcquireTime(self, instance, async_lib):
        print("READY", flush=True)


if __name__ == "__main__":
    ioc = AttrIOC(prefix="")
    run(ioc.pvdb, interfaces=["127.0.0.1"], log_pv_names=False)
    sys.exit(0)
