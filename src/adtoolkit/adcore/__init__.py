"""ADCore's file formats, shared by the simulated IOC and the XML validator.

A leaf package: it imports nothing else of adtoolkit and none of ophyd, caproto
or h5py, so both sides can use it and neither drags the other in.

- :mod:`.vocabulary`: the values ADCore's files and NDAttributes may hold;
- :mod:`.xmlreader`: the one hardened, line-tracking XML reader;
- :mod:`.macros`: the EPICS macro grammar of NDAttributesMacros;
- :mod:`.attributes`: NDAttributes files as ADCore reads them (NDAttributesStatus);
- :mod:`.layout`: NDFileHDF5 layouts as ADCore reads them, its default layout,
  and the ordered views the HDF5 writer needs.
"""
