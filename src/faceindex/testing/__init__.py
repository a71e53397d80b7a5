"""Test helpers shipped with faceindex: fake backends and the synthetic photos they read.

Logic tests of the pipeline, gallery, search, API and CLI use these instead of the real
models, and run in seconds::

    from faceindex.testing import FakeDetector, FakeEmbedder, synthetic_photo
    pipeline = Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    pipeline.verify(synthetic_photo([7]), synthetic_photo([7], variant=1))  # same person

or through settings, as ``detector = "fake"`` and ``embedder = "fake"``. Nothing here is
imported by the library itself; importing this package loads no model (OpenCV is imported
on the first ``detect``/``embed`` call).
"""

from __future__ import annotations

from faceindex.testing.fakes import FAKE_SPEC, FakeDetector, FakeEmbedder
from faceindex.testing.synthetic import synthetic_photo, synthetic_photo_bytes

__all__ = [
    "FAKE_SPEC",
    "FakeDetector",
    "FakeEmbedder",
    "synthetic_photo",
    "synthetic_photo_bytes",
]
