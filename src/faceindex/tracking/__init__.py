"""Multi-face tracking between detections, per-track identity voting and best-frame choice.

- :mod:`faceindex.tracking.kalman`: a constant-velocity Kalman filter on face boxes, in
  seconds (frames may be dropped or skipped, so time, not frame count, drives prediction);
- :mod:`faceindex.tracking.tracker`: :class:`~faceindex.tracking.tracker.FaceTracker`,
  which associates detections with predicted tracks (IoU with a centre-distance fallback
  for fast motion between sparse detections) and retires tracks after an absence timeout;
- :mod:`faceindex.tracking.identity`: best-quality frame selection per track and k-of-n
  identity voting with confirmation.

Pure numpy: nothing here loads a model or imports OpenCV.
"""
