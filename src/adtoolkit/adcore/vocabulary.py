"""ADCore's words: the values its XML files and NDAttributes may hold.

One table each, shared by the simulated IOC (which acts on them) and the
validator (which checks files against them), so that the two cannot drift.
The values are compared as ADCore compares them: with ``strcmp``, so case counts.
"""

from __future__ import annotations

#: NDAttribute source types understood by ``readNDAttributesFile`` (CONST is not in the XSD).
ATTRIBUTE_TYPES = ("EPICS_PV", "PARAM", "CONST", "FUNCTION")
#: ``sourceType`` of an NDAttribute, by its source type (stored as NDAttrSourceType).
SOURCE_TYPES = {
    "EPICS_PV": "NDAttrSourceEPICSPV",
    "PARAM": "NDAttrSourceParam",
    "FUNCTION": "NDAttrSourceFunct",
    "CONST": "NDAttrSourceConst",
}
#: ``datatype`` of PARAM attributes, compared with strcmp, so upper case only.
PARAM_DATATYPES = ("INT", "INT64", "DOUBLE", "STRING")
#: The NDAttribute type each PARAM ``datatype`` gives.  ADCore's default ("int")
#: matches none of them, so such an attribute stays undefined.
PARAM_NDATTR_TYPES = {"INT": "INT32", "INT64": "INT64", "DOUBLE": "FLOAT64", "STRING": "STRING"}
#: ``dbrtype`` of EPICS_PV attributes.
DBR_TYPES = (
    "DBR_NATIVE",
    "DBR_CHAR",
    "DBR_SHORT",
    "DBR_ENUM",
    "DBR_INT",
    "DBR_LONG",
    "DBR_FLOAT",
    "DBR_DOUBLE",
    "DBR_STRING",
)
#: NDAttributes NDFileHDF5 adds to every array itself.
AUTOMATIC_ATTRIBUTES = (
    "NDArrayUniqueId",
    "NDArrayTimeStamp",
    "NDArrayEpicsTSSec",
    "NDArrayEpicsTSnSec",
)
#: NDAttributes the (sim) driver attaches to every array.
DRIVER_ATTRIBUTES = ("ColorMode",)

#: ``when`` values NDFileHDF5 acts on (OnFrame is its default; anything else also means OnFrame).
WHEN_VALUES = ("OnFrame", "OnFileOpen", "OnFileClose")
#: ``type`` of layout constants.
CONST_TYPES = ("int", "float", "string")
#: ``source`` of layout datasets and attributes.
DATASET_SOURCES = ("detector", "ndattribute", "constant")
ATTRIBUTE_SOURCES = ("constant", "ndattribute")
#: The only ``<global>`` NDFileHDF5 reads.
DETECTOR_DATA_DESTINATION = "detector_data_destination"

#: NDAttributesStatus values and their mbbi strings (NDArrayBase.template).
STATUS_OK = 0
STATUS_NOT_FOUND = 1
STATUS_XML_ERROR = 2
STATUS_MACRO_ERROR = 3
STATUS_STRINGS = (
    "Attributes file OK",
    "File not found",
    "XML syntax error",
    "Macro substitution error",
)

#: What tells inline XML from a file name: NDAttributesFile holding ``<Attributes``
#: and XMLFileName holding ``<?xml`` are taken as the XML itself.
ATTRIBUTES_INLINE_MARKER = "<Attributes"
LAYOUT_INLINE_MARKER = "<?xml"
