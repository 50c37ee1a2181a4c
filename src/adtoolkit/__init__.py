"""adtoolkit: acquire images from EPICS area detectors with ophyd and bluesky.

The package has two halves that never import each other:

* :mod:`adtoolkit.ioc` -- a simulated ADSimDetector IOC on caproto (the "hardware");
* :mod:`adtoolkit.devices` -- ophyd classes that talk to any areaDetector IOC.

They meet only over Channel Access, exactly as at a beamline.
"""

__version__ = "0.1.0"
