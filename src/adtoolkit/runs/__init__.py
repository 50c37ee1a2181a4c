"""A run's documents, where its frames are, and where this workstation sees them.

What the exporter (:mod:`adtoolkit.export`) and the readers (:mod:`adtoolkit.readers`)
both need, so that neither imports the other:

* :mod:`~adtoolkit.runs.documents`: bluesky documents of any form -> one
  :class:`~adtoolkit.runs.documents.RunDocuments` per run, streams as columns;
* :mod:`~adtoolkit.runs.frames`: an image field's datum ids -> frame blocks
  (file, dataset, frame range), the path mapping applied;
* :mod:`~adtoolkit.runs.pathmap`: the ``path_map`` argument -> one IOC-path ->
  workstation-path function.

Nothing is imported here: the modules pull in event_model and h5py, and the CLI
imports ``export`` and ``readers`` for every sub-command.
"""
