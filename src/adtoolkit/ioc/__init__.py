"""The simulated ADSimDetector IOC: caproto records that behave like ADCore's.

Organised like ADCore, one concept per module:

- :mod:`~adtoolkit.ioc.records` and ``db/*.txt``: the record tables of each template
  (NDArrayBase, ADBase, simDetector, NDPluginBase, NDFile, NDFileHDF5, plugin templates);
- :mod:`~adtoolkit.ioc.pvgroups`: one caproto PVGroup per template, composed per port;
- :mod:`~adtoolkit.ioc.params`: the asyn parameter layer (one value per drvInfo, shared
  by a setpoint and its _RBV; callbacks push changes to the records);
- :mod:`~adtoolkit.ioc.driver`: asynPortDriver / asynNDArrayDriver (NDArray callbacks,
  queued-array accounting, NDAttributesFile);
- :mod:`~adtoolkit.ioc.simdetector` and :mod:`~adtoolkit.ioc.simimages`: the cam;
- :mod:`~adtoolkit.ioc.plugin`: NDPluginDriver (queues, blocking callbacks, priming);
- :mod:`~adtoolkit.ioc.ndfile` and :mod:`~adtoolkit.ioc.writers`: NDPluginFile and the
  TIFF/JPEG writers; ``hdf5/`` holds the NDFileHDF5 engine;
- :mod:`~adtoolkit.ioc.ndattributes`: each frame's NDAttributes (collector, EPICS_PV
  monitors, FUNCTION attributes); the files' formats are :mod:`adtoolkit.adcore`'s;
- :mod:`~adtoolkit.ioc.plugins`: the concrete plugins (image1, Stats, ROI, file plugins...);
- :mod:`~adtoolkit.ioc.server`: an IOC assembled from an instance definition;
- :mod:`~adtoolkit.ioc.command`: ``adtoolkit ioc``; :mod:`~adtoolkit.ioc.launcher`:
  :class:`SimulatedIOC`, the IOC as a subprocess for tests and notebooks.

Nothing here imports ophyd, bluesky or :mod:`adtoolkit.devices`: clients talk to
the IOC over Channel Access only.
"""
