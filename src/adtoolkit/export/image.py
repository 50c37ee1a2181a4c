"""Write one in-memory image as a small, complete NeXus file."""


def write_nexus_image(*a, **k):
    raise NotImplementedError
