"""The recognition pipeline: image -> detect -> quality -> align + embed -> compare.

Orchestration only: every stage is a registered backend chosen by settings. Backends load
their models lazily on first use (or on :meth:`Pipeline.warm_up`), so building a pipeline
is cheap and ``import faceindex`` loads nothing.

Two rules are the pipeline's own:

- the **crop fallback** (:func:`looks_like_face_crop`). An image that is already a tight,
  aligned face crop, where the detector finds nothing, is taken whole as the face instead
  of answering "no face" (see :func:`crop_fallback_face`; :func:`is_crop_fallback` tells
  such a face from a detection);
- **landmark refinement** (:mod:`faceindex.detection.refine`): before a face is embedded,
  its five points become the mean of the detector's points on the face's region at three
  sizes, as it is and mirrored, and of the first detection's;
- **restoration** (:mod:`faceindex.quality.restore`): a soft or dark face is also
  embedded sharpened or denoised, and the embedding whose SFace norm is larger is kept
  (the face's quality score stays that of the face as it is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceindex.alignment import ARCFACE_112
from faceindex.config import Settings
from faceindex.detection import DETECTORS, Detector
from faceindex.detection.refine import refine_landmarks
from faceindex.detection.subject import most_prominent
from faceindex.embedding import (
    EMBEDDERS,
    Embedder,
    NormReportingEmbedder,
    embed_many,
    similarity,
)
from faceindex.errors import FaceIndexError, FaceTooSmallError, InvalidInputError, NoFaceError
from faceindex.io.image import ImageLimits, ImageSource, load_image
from faceindex.quality import (
    QualityThresholds,
    assess,
    detector_confidence,
    embedding_quality_score,
)
from faceindex.quality.restore import Restoration, restoration_for, restore, same_face
from faceindex.types import (
    BBox,
    Embedding,
    Face,
    FloatArray,
    ImageArray,
    Landmarks,
    LandmarkScheme,
    Verification,
)

#: Largest side, in pixels, of an image the crop fallback applies to (see
#: :func:`looks_like_face_crop`).
CROP_MAX_SIDE = 160
#: Width / height range of an image the crop fallback applies to.
CROP_ASPECT = (0.8, 1.25)
#: Least standard deviation of the grey levels (0-255) of an image the crop fallback
#: applies to: a flat image is no face. glint6's 360 crops: 18.6 at least, 58 median.
CROP_MIN_CONTRAST = 8.0
#: The score of a crop-fallback face: no detector scored it. Real detections are above
#: their detector's threshold; :func:`is_crop_fallback` checks more than the score.
CROP_FALLBACK_SCORE = 0.0


def _label(source: ImageSource) -> str:
    return str(source) if isinstance(source, str | Path) else f"<{type(source).__name__}>"


@dataclass(frozen=True, slots=True)
class FaceChoice:
    """One face chosen from a photo for a comparison, and every face found there."""

    #: Every face of the photo, largest first, as :meth:`Pipeline.detect` lists them.
    faces: tuple[Face, ...]
    #: Which of ``faces`` was chosen.
    index: int
    #: The chosen face, with quality and embedding.
    face: Face

    @property
    def embedding(self) -> Embedding:
        return _embedding_of(self.face)


@dataclass(frozen=True, slots=True)
class PairVerification:
    """A 1:1 answer for two photos, saying which faces were compared."""

    verification: Verification
    a: FaceChoice
    b: FaceChoice


def _embedding_of(face: Face) -> Embedding:
    if face.embedding is None:  # pragma: no cover - embed_faces sets it
        raise NoFaceError("the face could not be embedded")
    return face.embedding


def _face_px(face: Face) -> int:
    """The shorter side of a face's box, in whole pixels (as the size gate measures it)."""
    return int(min(face.bbox.width, face.bbox.height))


def looks_like_face_crop(image: ImageArray) -> bool:
    """Whether ``image`` is shaped like an aligned face crop: both sides at most
    :data:`CROP_MAX_SIDE` pixels, width / height within :data:`CROP_ASPECT`, and not flat
    (grey levels spread by :data:`CROP_MIN_CONTRAST` at least).

    Why this rule: aligned crops, as face datasets and other face pipelines write them, are
    small and (nearly) square: 112x112 (ArcFace, InsightFace, Glint360k, MS1M), 96x112
    (SphereFace/CosFace, aspect 0.86), 150x150 (dlib chips), 160x160 (FaceNet/MTCNN). The
    face fills them to the edges, which is what defeats detectors trained on faces with
    context around them (on glint6's 112x112 crops dlib's HOG detector misses 51 of 360).
    A photo of a scene is almost never that small, and photo thumbnails are 4:3 or 3:2
    (1.33, 1.5: outside the range); a blank image (flat) is never taken. What the rule
    lets through by mistake, a small square image with no face, becomes a face whose
    embedding matches no one, marked as a fallback (:func:`is_crop_fallback`), rather
    than "no face".
    """
    if image.ndim != 3 or image.shape[2] < 3:
        return False
    height, width = image.shape[:2]
    if not 0 < width <= CROP_MAX_SIDE or not 0 < height <= CROP_MAX_SIDE:
        return False
    low, high = CROP_ASPECT
    if not low <= width / height <= high:
        return False
    grey = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(grey.std()) >= CROP_MIN_CONTRAST


def _template_landmarks(width: float, height: float) -> np.ndarray:
    """The ArcFace 112x112 five points for a ``width`` x ``height`` crop: scaled by the
    height and centred across (exact for 112x112 crops, and for 96x112 ones, whose template
    is ArcFace's shifted 8 px left)."""
    scale = height / 112.0
    offset = np.array([(width - 112.0 * scale) / 2.0, 0.0])
    out: np.ndarray = (ARCFACE_112 * scale + offset).astype(np.float32)
    return out


def crop_fallback_face(image: ImageArray) -> Face:
    """The whole of ``image`` as one face: box = the image, landmarks = the ArcFace template
    scaled to it (:func:`_template_landmarks`), score :data:`CROP_FALLBACK_SCORE`."""
    height, width = (float(v) for v in image.shape[:2])
    points = _template_landmarks(width, height)
    return Face(
        bbox=BBox(0.0, 0.0, width, height),
        score=CROP_FALLBACK_SCORE,
        landmarks=Landmarks(points, LandmarkScheme.FIVE_POINT),
    )


def is_crop_fallback(face: Face) -> bool:
    """Whether ``face`` is a crop-fallback face (no detector found it): the score
    :data:`CROP_FALLBACK_SCORE`, a box at the origin and exactly the template landmarks."""
    box, marks = face.bbox, face.landmarks
    if face.score != CROP_FALLBACK_SCORE or box.x1 != 0.0 or box.y1 != 0.0 or marks is None:
        return False
    if marks.scheme is not LandmarkScheme.FIVE_POINT or marks.points.shape != (5, 2):
        return False
    return bool(np.allclose(marks.points, _template_landmarks(box.x2, box.y2), atol=1e-3))


def with_quality_floor(
    result: Verification, faces: Sequence[Face], reject_below: float | None
) -> Verification:
    """``result`` with the pair's quality (the lower of its faces' quality scores), marked
    unsure (:attr:`~faceindex.types.Decision.UNSURE`) when that is under ``reject_below``.

    Why the lower of the two: a comparison is as good as its worse face
    (docs/robustness.md: the error-versus-reject curve of this pair quality). A face
    without a quality cannot pass a floor, so it is unsure too.
    """
    scores = [f.quality.score if f.quality is not None else None for f in faces]
    known = [q for q in scores if q is not None]
    quality = min(known) if known and len(known) == len(scores) else None
    unsure = reject_below is not None and (quality is None or quality < reject_below)
    return dataclasses.replace(result, quality=quality, unsure=unsure)


class Pipeline:
    def __init__(
        self,
        *,
        detector: Detector,
        embedder: Embedder,
        threshold: float | None = None,
        limits: ImageLimits | None = None,
        quality: QualityThresholds | None = None,
        crop_fallback: bool = True,
        restoration: bool = True,
        landmark_refinement: bool = True,
    ) -> None:
        """``crop_fallback``: take an image shaped like a face crop whole as its face when
        the detector finds none (:func:`looks_like_face_crop`). ``restoration``: embed soft
        and dark faces restored too, keeping the better (:mod:`faceindex.quality.restore`);
        off, every face is embedded as it is. ``landmark_refinement``: align each face
        from refined landmarks (:mod:`faceindex.detection.refine`); off, from the
        detector's."""
        self.detector = detector
        self.embedder = embedder
        self.threshold = embedder.spec.threshold if threshold is None else threshold
        self.limits = limits or ImageLimits()
        self.quality_thresholds = quality or QualityThresholds()
        self.crop_fallback = crop_fallback
        self.restoration = restoration
        self.landmark_refinement = landmark_refinement

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Pipeline:
        s = settings or Settings()
        det_kwargs: dict[str, object] = {"min_face_px": s.detection.min_face_px}
        if s.detection.score_threshold is not None:
            det_kwargs["score_threshold"] = s.detection.score_threshold
        detector = DETECTORS.get(s.detection.detector)(**det_kwargs)
        embedder = EMBEDDERS.get(s.embedding.embedder)(
            threads=s.runtime.threads,
            flip=s.embedding.flip,
            cache_dir=Path(s.runtime.cache_dir).expanduser() if s.runtime.cache_dir else None,
        )
        limits = ImageLimits(s.runtime.max_image_pixels, s.runtime.max_image_bytes)
        return cls(
            detector=detector,
            embedder=embedder,
            threshold=s.embedding.threshold,
            limits=limits,
            crop_fallback=bool(getattr(s.detection, "crop_fallback", True)),
            restoration=s.embedding.restoration,
            landmark_refinement=s.embedding.landmark_refinement,
        )

    @property
    def model_id(self) -> str:
        return self.embedder.spec.model_id

    def warm_up(self) -> None:
        self.detector.warm_up()
        self.embedder.warm_up()

    def load(self, source: ImageSource) -> ImageArray:
        return load_image(source, limits=self.limits)

    def find_faces(self, image: ImageArray) -> tuple[Face, ...]:
        """The detector's faces of a decoded image, largest first, or the crop-fallback
        face when it finds none in an image shaped like a face crop (without quality)."""
        faces = self.detector.detect(image)
        if not faces and self.crop_fallback and looks_like_face_crop(image):
            return (crop_fallback_face(image),)
        return faces

    def detect(self, source: ImageSource | ImageArray) -> tuple[Face, ...]:
        """Every face with its box, landmarks, detector score and quality, largest first."""
        image = self.load(source)
        return self._with_quality(image, self.find_faces(image))

    def analyze(self, source: ImageSource) -> tuple[Face, ...]:
        """Every face, with quality and embedding (all faces of the photo in one batch)."""
        image = self.load(source)
        faces = self._with_quality(image, self.find_faces(image))
        return self.embed_faces(image, faces)

    def embed_faces(self, image: ImageArray, faces: Sequence[Face]) -> tuple[Face, ...]:
        """``faces`` with their embeddings; a face that has a quality gets the score of an
        embedded face when the embedder reports SFace's raw norms
        (:func:`faceindex.quality.embedding_quality_score`)."""
        if not faces:
            return ()
        faces = self._refined(image, faces)
        if isinstance(self.embedder, NormReportingEmbedder):
            found = self.embedder.embed_with_norms(image, faces)
            [(vectors, norms)] = self._restore(self.embedder, [(image, faces, found)])
            return self._embedded(faces, vectors, norms)
        return self._embedded(faces, self.embedder.embed(image, faces), None)

    def _refined(self, image: ImageArray, faces: Sequence[Face]) -> Sequence[Face]:
        """``faces`` with refined landmarks (:mod:`faceindex.detection.refine`) when
        refinement is on; crop-fallback faces keep the template's points."""
        if not self.landmark_refinement:
            return faces
        return tuple(
            f if is_crop_fallback(f) else refine_landmarks(self.detector, image, f) for f in faces
        )

    def _restore(
        self,
        embedder: NormReportingEmbedder,
        photos: Sequence[tuple[ImageArray, Sequence[Face], tuple[FloatArray, FloatArray]]],
    ) -> list[tuple[FloatArray, FloatArray]]:
        """Each photo's ``(vectors, norms)`` after every face whose quality calls for it
        was embedded again, restored (:mod:`faceindex.quality.restore`), in one batch: the
        restored face's vector replaces the first where its SFace norm is the larger. The
        norms stay those of the faces as they are, so that a face's quality score still
        says how damaged the photo is (the score was fitted on unrestored faces, and a
        filter that raises the norm does not make a face as reliable as a clean one).
        A face without quality measures is left alone."""
        out = [found for _image, _faces, found in photos]
        if not self.restoration:
            return out
        todo: list[tuple[int, int]] = []
        items: list[tuple[ImageArray, Sequence[Face]]] = []
        for k, (image, faces, _found) in enumerate(photos):
            for i, face in enumerate(faces):
                kind = restoration_for(face.quality)
                item = None if kind is None else self._restored(image, face, kind)
                if item is not None:
                    items.append(item)
                    todo.append((k, i))
        if not items:
            return out
        again = embedder.embed_many_with_norms(items)
        for (k, i), (new_vec, new_norm) in zip(todo, again, strict=True):
            vectors, norms = out[k]
            if float(new_norm[0]) > float(norms[i]):
                if vectors is photos[k][2][0]:  # copy on first write: callers' arrays stay
                    vectors = vectors.copy()
                    out[k] = (vectors, norms)
                vectors[i] = new_vec[0]
        return out

    def _restored(
        self, image: ImageArray, face: Face, kind: Restoration
    ) -> tuple[ImageArray, tuple[Face]] | None:
        """The region around ``face`` restored, and the face as the detector finds it
        there again, its landmarks refined there too when refinement is on (as it was
        when the detector finds no such face); None when the region is too small."""
        done = restore(image, face, kind)
        if done is None:
            return None
        fixed, placed = done
        again = same_face(self.detector.detect(fixed), placed)
        if again is None:
            return fixed, (placed,)
        if self.landmark_refinement:
            again = refine_landmarks(self.detector, fixed, again)
        return fixed, (again,)

    def _embedded(
        self, faces: Sequence[Face], vectors: FloatArray, norms: FloatArray | None
    ) -> tuple[Face, ...]:
        model_id = self.model_id
        out = []
        for i, (face, vec) in enumerate(zip(faces, vectors, strict=True)):
            quality = face.quality
            if quality is not None and norms is not None:
                score = embedding_quality_score(detector_confidence(face), float(norms[i]))
                quality = dataclasses.replace(quality, score=score)
            out.append(
                dataclasses.replace(face, embedding=Embedding(vec, model_id), quality=quality)
            )
        return tuple(out)

    def embed_photos(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[Face, ...]]:
        """:meth:`embed_faces` for several decoded photos, in one batch through the
        embedder's networks where it can (:func:`faceindex.embedding.embed_many`)."""
        items = [(image, self._refined(image, faces)) for image, faces in items]
        with_faces = [(image, faces) for image, faces in items if faces]
        found: Iterator[tuple[FloatArray, FloatArray | None]]
        if not with_faces:
            found = iter(())
        elif isinstance(self.embedder, NormReportingEmbedder):
            done = self.embedder.embed_many_with_norms(with_faces)
            photos = [(im, fs, d) for (im, fs), d in zip(with_faces, done, strict=True)]
            found = iter(self._restore(self.embedder, photos))
        else:
            found = ((v, None) for v in embed_many(self.embedder, with_faces))
        return [self._embedded(faces, *next(found)) if faces else () for _image, faces in items]

    def iter_subjects(
        self,
        sources: Iterable[ImageSource],
        *,
        batch: int = 16,
        batch_pixels: int = 64_000_000,
    ) -> Iterator[Face | FaceIndexError]:
        """Each photo's subject (:meth:`subject_face`), in order, or the error that photo
        gave (unreadable, no face, ...). Photos are decoded and detected one by one and
        their subjects embedded ``batch`` at a time, fewer when the decoded photos of a
        batch would hold more than ``batch_pixels`` pixels (they are all in memory until
        the batch is embedded)."""
        pending: list[tuple[ImageArray, Face] | FaceIndexError] = []
        pixels = 0
        for source in sources:
            try:
                image = self.load(source)
                faces = self.find_faces(image)
                if not faces:
                    raise self.no_face_error(image, _label(source))
                height, width = image.shape[:2]
                subject = faces[most_prominent(faces, width, height)]
                pending.append((image, self._with_quality(image, [subject])[0]))
                pixels += height * width
            except FaceIndexError as exc:
                pending.append(exc)
            if len(pending) >= batch or pixels >= batch_pixels:
                yield from self._embed_subjects(pending)
                pending, pixels = [], 0
        yield from self._embed_subjects(pending)

    def _embed_subjects(
        self, pending: list[tuple[ImageArray, Face] | FaceIndexError]
    ) -> list[Face | FaceIndexError]:
        found = [x for x in pending if not isinstance(x, FaceIndexError)]
        embedded = iter(self.embed_photos([(image, (face,)) for image, face in found]))
        return [x if isinstance(x, FaceIndexError) else next(embedded)[0] for x in pending]

    def subject_face(self, source: ImageSource) -> Face:
        """The photo's subject (its most prominent face: :mod:`faceindex.detection.subject`),
        embedded; :class:`NoFaceError` if there is none (:class:`FaceTooSmallError` when the
        detector saw one below its size gate)."""
        return self.choose_face(source).face

    def choose_face(
        self, source: ImageSource, index: int | None = None, *, label: str | None = None
    ) -> FaceChoice:
        """Face ``index`` of a photo (faces are listed largest first; by default the photo's
        subject, its most prominent face: :mod:`faceindex.detection.subject`), embedded,
        with every face found; :class:`NoFaceError` (or :class:`FaceTooSmallError`) when
        there is none, :class:`InvalidInputError` when ``index`` is past the last face."""
        image = self.load(source)
        name = label or _label(source)
        faces = self.find_faces(image)
        if not faces:
            raise self.no_face_error(image, name)
        height, width = image.shape[:2]
        i = most_prominent(faces, width, height) if index is None else index
        if not 0 <= i < len(faces):
            raise InvalidInputError(
                f"{name}: face {i} was asked for, but the photo has {len(faces)} "
                f"face{'s' if len(faces) != 1 else ''} (0 is the largest)",
                field=name,
                faces=len(faces),
            )
        chosen = self.embed_faces(image, self._with_quality(image, faces[i : i + 1]))[0]
        return FaceChoice(faces, i, chosen)

    def verify_faces(
        self,
        a: ImageSource,
        b: ImageSource,
        *,
        face_a: int | None = None,
        face_b: int | None = None,
        search: bool = False,
        labels: tuple[str, str] | None = None,
        reject_below: float | None = None,
    ) -> PairVerification:
        """Are face ``face_a`` of photo ``a`` and face ``face_b`` of photo ``b`` the same
        person? (Default: the subject of each, its most prominent face.)

        ``search``: is A's face anyone in B? It is compared with every face of B and the
        best is answered (``face_b`` must then be left out). ``reject_below``: a quality
        floor; when either face's quality score is under it the answer is unsure
        (:func:`with_quality_floor`).
        """
        if search and face_b is not None:
            raise InvalidInputError("give face_b or search, not both")
        la, lb = labels or (_label(a), _label(b))
        first = self.choose_face(a, face_a, label=la)
        if not search:
            second = self.choose_face(b, face_b, label=lb)
        else:
            image = self.load(b)
            faces = self.find_faces(image)
            if not faces:
                raise self.no_face_error(image, lb)
            embedded = self.embed_faces(image, self._with_quality(image, faces))
            scores = [similarity(first.embedding, _embedding_of(f)) for f in embedded]
            best = max(range(len(scores)), key=scores.__getitem__)
            second = FaceChoice(faces, best, embedded[best])
        result = self.compare(first.embedding, second.embedding)
        result = with_quality_floor(result, (first.face, second.face), reject_below)
        return PairVerification(result, first, second)

    def small_face(self, image: ImageArray) -> Face | None:
        """The largest face the detector saw in ``image`` but dropped for being under its
        size gate (``min_face_px``); None when there is none, or when the detector cannot
        tell (it has no ``detect_small``). Meant for photos where no face was found."""
        probe = getattr(self.detector, "detect_small", None)
        if probe is None:
            return None
        small: tuple[Face, ...] = probe(image)
        return small[0] if small else None

    def too_small_text(self, face: Face) -> str:
        """``face too small (N px, need M)`` for a face under the detector's size gate."""
        px, need = _face_px(face), self.min_face_px
        return f"face too small ({px} px, need {need})"

    @property
    def min_face_px(self) -> int:
        """The detector's size gate: faces whose shorter side is under it are dropped."""
        return int(getattr(self.detector, "min_face_px", 0))

    def no_face_error(self, image: ImageArray, label: str) -> NoFaceError:
        """The error for a photo where no face was found: :class:`FaceTooSmallError` with
        both sizes when the detector saw one below its size gate, else :class:`NoFaceError`."""
        small = self.small_face(image)
        if small is None:
            return NoFaceError(f"{label}: no face found", path=label)
        return FaceTooSmallError(
            f"{label}: {self.too_small_text(small)}",
            path=label,
            face_px=_face_px(small),
            min_face_px=self.min_face_px,
        )

    def compare(self, a: Embedding, b: Embedding) -> Verification:
        return Verification(similarity(a, b), self.threshold, a.model_id)

    def verify(self, a: ImageSource, b: ImageSource) -> Verification:
        """Are the subjects (most prominent faces) of two photos the same person?"""
        fa, fb = self.subject_face(a), self.subject_face(b)
        assert fa.embedding is not None and fb.embedding is not None  # set by embed_faces
        return self.compare(fa.embedding, fb.embedding)

    def _with_quality(self, image: ImageArray, faces: Sequence[Face]) -> tuple[Face, ...]:
        return tuple(
            dataclasses.replace(f, quality=assess(image, f, self.quality_thresholds)) for f in faces
        )
