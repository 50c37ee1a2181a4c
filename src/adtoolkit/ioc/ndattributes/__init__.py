"""The simulated IOC's NDAttributes: collecting each frame's attribute values.

Reading an attributes file (NDAttributesFile, NDAttributesMacros, NDAttributesStatus)
is ADCore's format and lives in :mod:`adtoolkit.adcore.attributes`; this package
turns its definitions into values: :mod:`.collector` (one frame's attributes),
:mod:`.pv` (EPICS_PV monitors) and :mod:`.functions` (FUNCTION attributes).
"""

from adtoolkit.ioc.ndattributes.collector import AttributeCollector
from adtoolkit.ioc.ndattributes.functions import FUNCTIONS, register_function
from adtoolkit.ioc.ndattributes.pv import PVMonitor, shared_ca_context, typed_zero

__all__ = [
    "FUNCTIONS",
    "AttributeCollector",
    "PVMonitor",
    "register_function",
    "shared_ca_context",
    "typed_zero",
]
