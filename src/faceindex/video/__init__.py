"""Video: recognise people in files, webcams and network streams; the ``watch`` engine.

- :mod:`faceindex.video.watch`: :class:`~faceindex.video.watch.Watcher`, detection every N
  frames (adaptive), tracking between detections, per-track recognition and events;
- :mod:`faceindex.video.recognition`: embedding a track's best samples and identifying
  them (inline for files, on a worker thread for live sources);
- :mod:`faceindex.video.events`: the event records and their sinks (JSON lines, webhook,
  unknown-face crops);
- :mod:`faceindex.video.annotate`: drawing, video writing, preview window.

Frame sources are in :mod:`faceindex.io.video`; anonymisation in
:mod:`faceindex.video.anonymize`.
"""
