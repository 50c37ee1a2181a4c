"""NDPluginScatter (Scatter1:) and NDPluginGather (Gather1:, eight inputs) in the
commonPlugins instance, over Channel Access.

The expected counts were read from the real IOC (ADCore R3-14) after the same puts:
Scatter1 with no client counts its array and passes it nowhere; Stats4 and Stats5
fed from SCATTER1 take turns (counters 1/0, 1/1, 2/1, 2/2, 3/2); Gather1, whose
eight inputs all boot on the cam, counts 8 per cam frame, and 1 per frame when its
inputs are STATS4 and STATS5 behind the scatter.
"""

from __future__ import annotations

import pytest
from test_ioc_roistat import common, ioc_factory  # noqa: F401 (fixtures)

REAL_TURNS = [(1, 0), (1, 1), (2, 1), (2, 2), (3, 2)]


@pytest.fixture
def sg(common):  # noqa: F811
    ca = common[1]
    for name, value in {
        "ImageMode": "Single",
        "SizeX": 16,
        "SizeY": 12,
        "DataType": "UInt16",
        "ColorMode": "Mono",
        "AcquireTime": 0.001,
        "AcquirePeriod": 0.0,
    }.items():
        ca.put("cam1:" + name, value)
    for name in ("Scatter1:", "Gather1:"):
        ca.put(name + "BlockingCallbacks", 1)
    yield ca
    for s in ("Stats4:", "Stats5:"):
        ca.put(s + "NDArrayPort", "SIM1")
        ca.put(s + "EnableCallbacks", 0)
        ca.put(s + "BlockingCallbacks", 0)
    ca.put("Scatter1:EnableCallbacks", 0)
    ca.put("Gather1:EnableCallbacks", 0)
    for n in range(1, 9):
        ca.put(f"Gather1:NDArrayPort_{n}", "SIM1")


def acquire(ca, counter: str) -> None:
    before = ca.get(counter)
    ca.put("cam1:Acquire", 1)
    ca.wait_value(counter, before + 1, timeout=10)


def test_boot_as_the_real_ioc(common):  # noqa: F811
    ca = common[1]
    assert ca.get("Scatter1:PluginType_RBV") == "NDPluginScatter"
    assert ca.get("Scatter1:ScatterMethod_RBV", as_string=True) == "Round robin"
    assert ca.get("Gather1:PluginType_RBV") == "NDPluginGather"
    for n in range(1, 9):
        assert ca.get(f"Gather1:NDArrayPort_{n}_RBV") == "SIM1"
        assert ca.get(f"Gather1:NDArrayAddress_{n}") == 0


def test_scatter_without_clients_and_gather_of_eight_inputs(sg):
    sg.put("Scatter1:EnableCallbacks", 1)
    sg.put("Gather1:EnableCallbacks", 1)
    gathered = sg.get("Gather1:ArrayCounter_RBV")
    acquire(sg, "Scatter1:ArrayCounter_RBV")  # nobody downstream: nothing waits
    sg.wait_value("Gather1:ArrayCounter_RBV", gathered + 8)
    assert sg.get("Scatter1:DroppedOutputArrays_RBV") == 0
    assert sg.get("Scatter1:DroppedArrays_RBV") == 0
    sg.wait_value("cam1:NumQueuedArrays", 0)


def test_round_robin_and_gather_from_the_scattered_ports(sg):
    sg.put("Scatter1:EnableCallbacks", 1)
    start = {}
    for s in ("Stats4:", "Stats5:"):
        sg.put(s + "NDArrayPort", "SCATTER1")
        sg.put(s + "BlockingCallbacks", 1)
        sg.put(s + "EnableCallbacks", 1)
        start[s] = sg.get(s + "ArrayCounter_RBV")
    for n, port in enumerate(["STATS4", "STATS5", "", "", "", "", "", ""], 1):
        sg.put(f"Gather1:NDArrayPort_{n}", port)
    assert sg.get("Gather1:NDArrayPort_1_RBV") == "STATS4"
    sg.put("Gather1:EnableCallbacks", 1)
    gathered = sg.get("Gather1:ArrayCounter_RBV")
    for stats4, stats5 in REAL_TURNS:
        acquire(sg, "Scatter1:ArrayCounter_RBV")
        got = (
            sg.get("Stats4:ArrayCounter_RBV") - start["Stats4:"],
            sg.get("Stats5:ArrayCounter_RBV") - start["Stats5:"],
        )
        assert got == (stats4, stats5)
    sg.wait_value("Gather1:ArrayCounter_RBV", gathered + len(REAL_TURNS))
