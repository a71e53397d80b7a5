"""dlib's ResNet face descriptor (``dlib-resnet``), everything about it in one place.

- :mod:`~faceindex.embedding.dlib_resnet.embedder`: :class:`DlibResnetEmbedder`, the
  registered backend (dlib's chip alignment, flip averaging, the ``onnx``/``dlib`` backends);
- :mod:`~faceindex.embedding.dlib_resnet.dat`: a numpy reader of dlib's ``.dat`` networks;
- :mod:`~faceindex.embedding.dlib_resnet.onnx_graph`: the network rebuilt as an ONNX graph
  for onnxruntime, cached once per weight file in the cache folder.

Importing this package imports neither dlib, onnx nor onnxruntime: they load with the model.
"""

from __future__ import annotations

from faceindex.embedding.dlib_resnet.embedder import Backend, DlibResnetEmbedder

__all__ = ["Backend", "DlibResnetEmbedder"]
