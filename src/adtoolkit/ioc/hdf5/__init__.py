"""The simulated NDFileHDF5 plugin's engine: layout XML and the HDF5 writer."""
