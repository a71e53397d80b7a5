"""Moving a gallery to another embedding model by re-embedding its kept photos.

All or nothing: every template must come from a kept photo (``keep_photos``), every face
is found again in its photo (the face whose box overlaps the stored box most), and the old
templates are replaced in one transaction, so a failure leaves the gallery on its old
model, intact.
"""

from __future__ import annotations

from collections.abc import Sequence

from faceindex.embedding import TemplateConverter
from faceindex.errors import ConflictError, EmbeddingModelMismatchError, NoFaceError
from faceindex.gallery.enrolment import add_template
from faceindex.gallery.store import GalleryStore
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline
from faceindex.types import BBox, Embedding, Face


def reembed(store: GalleryStore, pipeline: Pipeline, *, actor: str) -> int:
    """Move every template to ``pipeline``'s model; returns the templates written.

    When the new embedder can convert the stored templates exactly (e.g. between fusion
    weights), they are converted and no photo is needed; otherwise every kept photo is
    embedded again.
    """
    converted = _convert(store, pipeline, actor=actor)
    if converted is not None:
        return converted
    sources = store.template_sources()
    missing = [t for t, _, photo, kept in sources if photo is None or not kept]
    if missing:
        raise ConflictError(
            f"{len(missing)} of {len(sources)} templates have no kept photo, so they cannot "
            "be re-embedded: enrol with keep_photos (--keep-photos) or stay on the "
            f"gallery's model {store.model_id!r}",
            templates_without_photo=len(missing),
        )
    by_photo: dict[int, list[int]] = {}
    for template_id, _, photo_id, _ in sources:
        by_photo.setdefault(int(photo_id or 0), []).append(template_id)
    infos = {t.id: t for pid in {p for _, p, _, _ in sources} for t in store.templates(pid)}
    new_rows: list[tuple[int, int, Face, tuple[str, ...]]] = []
    for photo_id, template_ids in by_photo.items():
        data = store.photo_bytes(photo_id)
        if data is None:  # pragma: no cover - excluded above
            raise ConflictError(f"photo #{photo_id} is not kept")
        rgb = load_image(data, limits=pipeline.limits, name=f"photo #{photo_id}")
        faces = pipeline.detect(rgb)
        for template_id in template_ids:
            info = infos[template_id]
            face = matching_face(faces, info.bbox)
            if face is None:
                raise NoFaceError(
                    f"the face of template #{template_id} is not found again in photo "
                    f"#{photo_id} by the new model's detector; nothing was changed"
                )
            embedded = pipeline.embed_faces(rgb, [face])[0]
            new_rows.append((info.person_id, photo_id, embedded, info.flags))
    with store.transaction() as conn:
        store.delete_all_templates(conn)
        store.add_pending_erasure(conn, "reembed")
        store.unbind_model(conn)
        for person_id, photo_id, face, flags in new_rows:
            add_template(store, conn, person_id, photo_id, face, flags=flags)
        store.audit(
            conn,
            "reembed",
            actor=actor,
            details={"model_id": pipeline.model_id, "templates": len(new_rows)},
        )
    store.finish_erasures()
    return len(new_rows)


def _convert(store: GalleryStore, pipeline: Pipeline, *, actor: str) -> int | None:
    old = store.model_id
    embedder = pipeline.embedder
    if old is None or not isinstance(embedder, TemplateConverter):
        return None
    vs = store.vectors()
    vectors = embedder.convert(vs.vectors, old)
    if vectors is None:
        return None
    infos = {t.id: t for pid in {int(p) for p in vs.person_ids} for t in store.templates(pid)}
    with store.transaction() as conn:
        store.delete_all_templates(conn)
        store.add_pending_erasure(conn, "reembed")
        store.unbind_model(conn)
        for template_id, vector in zip(vs.template_ids, vectors, strict=True):
            info = infos[int(template_id)]
            store.add_template(
                conn,
                info.person_id,
                Embedding(vector, pipeline.model_id),
                photo_id=info.photo_id,
                quality=info.quality,
                bbox=info.bbox,
                flags=info.flags,
            )
        store.audit(
            conn,
            "reembed",
            actor=actor,
            details={"model_id": pipeline.model_id, "templates": len(vectors), "from": old},
        )
    store.finish_erasures()
    return len(vectors)


def check_model(bound: str | None, model: str) -> None:
    """Refuse to mix a pipeline's embeddings into a gallery bound to another model."""
    if bound is not None and bound != model:
        raise EmbeddingModelMismatchError(
            f"this gallery holds {bound!r} templates but the pipeline makes "
            f"{model!r} ones: use the gallery's model (--embedder), or re-embed the "
            "gallery with 'faceindex reembed' (fusion templates convert directly; other "
            "models need the photos kept with --keep-photos)",
            gallery_model=bound,
            model=model,
        )


def matching_face(faces: Sequence[Face], bbox: BBox | None) -> Face | None:
    """The face of ``faces`` that is the stored box's (IoU >= 0.3), if any."""
    if not faces:
        return None
    if bbox is None:
        return faces[0] if len(faces) == 1 else None
    best = max(faces, key=lambda f: f.bbox.iou(bbox))
    return best if best.bbox.iou(bbox) >= 0.3 else None
