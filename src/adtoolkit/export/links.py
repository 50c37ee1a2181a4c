"""How an export refers to frames that stay in the IOC's file.

Two readers' limits decide the form (checked with nexusformat 2.1.0, whose
``nxcheck`` applies NXDL v2026.01):

* an HDF5 external link shows the *IOC file's* attributes: ADCore's default
  layout puts ``@signal=1`` and no ``@units`` on its frames, which NXDL 2026
  rejects in an NXdetector (two warnings), and the IOC's file is never written;
* nexusformat reads every virtual dataset as one frame per source mapping
  (``NXvirtualfield``), so a virtual dataset over a whole (N, Y, X) dataset
  comes back with shape (1, Y, X) and cannot be read by it.

So the NXdetector holds a virtual dataset with its own ``@units`` (valid NeXus,
read right by h5py, silx and ``open_run``), and the places readers plot from
(NXdata, ``measurement/devices``) hold an external link to the same dataset,
which every reader follows correctly and which nxcheck does not flag there.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..runs.frames import DetectorFrames

#: what an area detector's pixel values count (NXdetector ``data`` has NX_ANY units)
DETECTOR_UNITS = "counts"


def virtualise_link(det: h5py.Group, name: str, frames: DetectorFrames) -> None:
    """Replace the external link ``det[name]`` by a virtual dataset over the same frames."""
    link = det.get(name, getlink=True)
    layout = h5py.VirtualLayout(shape=frames.shape, dtype=frames.dtype)
    source = h5py.VirtualSource(link.filename, link.path, shape=frames.shape)
    n = frames.num_frames  # a hyperslab, not "all": readers ask the mapping for its bounds
    layout[0:n] = source[0:n]
    del det[name]
    det.create_virtual_dataset(name, layout)
    det[name].attrs["frames_per_point"] = np.int32(frames.frames_per_point)


def whole_source(ds: h5py.Dataset) -> tuple[str, str] | None:
    """(file, dataset) if ``ds`` is a virtual dataset mapping one whole dataset, in order."""
    if not ds.is_virtual:
        return None
    sources = ds.virtual_sources()
    if len(sources) != 1:
        return None
    (src,) = sources
    whole = src.src_space.shape == ds.shape and src.vspace.shape == ds.shape
    selected = src.src_space.get_select_npoints() == src.vspace.get_select_npoints()
    if not (whole and selected and src.src_space.get_select_npoints() == np.prod(ds.shape)):
        return None
    return src.file_name, src.dset_name


def link_frames(det: h5py.Group, target: h5py.Group, name: str) -> None:
    """Make ``target[name]`` the detector's frames, in the form every reader reads right.

    An external link where the detector's frames are one whole IOC dataset
    (see the module docstring), else a hard link to the detector's dataset.
    """
    link = det.get("data", getlink=True)
    if isinstance(link, h5py.ExternalLink):
        target[name] = h5py.ExternalLink(link.filename, link.path)
        return
    whole = whole_source(det["data"])
    if whole is not None:
        target[name] = h5py.ExternalLink(*whole)
    else:
        data = det["data"]
        data.attrs["target"] = data.name  # NeXus names the original of a linked field
        target[name] = data
