"""A gallery to one file and back: export and import.

The file is one JSON header line, then the payload::

    {"format": "faceindex-gallery", "version": 1, "sealed": false, "key_id": null}\\n
    gzip(JSON document)

The document holds the gallery's model id and dimension, and every person (name, external
id, metadata) with their templates: the vector (float32 little-endian, base64), quality,
box, enrolment flags, the source file name and the SHA-256 of the photo it came from (the
real ones, unsealed from the gallery: the receiving gallery derives its own lookups with
its own key, or stores them plain without one); the photo's bytes too, but only when they
are kept and the export asks for them.

**Sealed.** A gallery opened with a template key exports a sealed file: the payload is
AES-256-GCM ciphertext under that key (:mod:`faceindex.crypto`), bound to the header
(its associated data), and the header names the key id; so the digests and source names
are no more readable in the file than in the gallery. Import needs a gallery opened with
the same key; a file sealed under another key, or altered, is refused.

**Import** adds, in one transaction audited as ``import``, each person of the file to the
person of the same name (matched regardless of case: "merged"), or creates them. A template
whose photo (by SHA-256) is already enrolled, for anyone, is skipped, so importing the same
file twice adds nothing. Templates of another embedding model than the gallery's are refused
(:class:`~faceindex.errors.EmbeddingModelMismatchError`) before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceindex import __version__
from faceindex.crypto import TemplateKey
from faceindex.db import now
from faceindex.errors import (
    EmbeddingModelMismatchError,
    InvalidInputError,
    StorageError,
)
from faceindex.gallery.store import GalleryStore
from faceindex.types import BBox, Embedding

FORMAT = "faceindex-gallery"
VERSION = 1
#: The largest header line read (it is a few dozen bytes).
_MAX_HEADER = 4096


@dataclass(frozen=True, slots=True)
class ImportReport:
    people_created: int
    people_merged: int
    templates_added: int
    #: Templates not imported: their photo was already enrolled.
    skipped: int

    def as_dict(self) -> dict[str, int]:
        return {
            "people_created": self.people_created,
            "people_merged": self.people_merged,
            "templates_added": self.templates_added,
            "skipped": self.skipped,
        }


def export_gallery(store: GalleryStore, *, photos: bool = False, actor: str) -> bytes:
    """The whole gallery as one export file (sealed when the store has a key)."""
    document = _document(store, photos=photos)
    key = store.sealer.key
    header = {
        "format": FORMAT,
        "version": VERSION,
        "sealed": key is not None,
        "key_id": None if key is None else key.key_id,
    }
    head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    payload = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
    if key is not None:
        payload = key.encrypt(payload, head)
    n_templates = sum(len(p["templates"]) for p in document["people"])
    with store.transaction() as conn:
        store.audit(
            conn,
            "export",
            actor=actor,
            details={
                "people": len(document["people"]),
                "templates": n_templates,
                "photos": photos,
                "sealed": key is not None,
            },
        )
    return head + payload


def _document(store: GalleryStore, *, photos: bool) -> dict[str, Any]:
    people: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = store.persons(offset=offset, limit=500)
        if not page:
            break
        offset += len(page)
        for person in page:
            templates = store.templates(person.id)
            vectors: dict[int, np.ndarray] = {}
            if templates:
                vs = store.vectors([t.id for t in templates])
                vectors = dict(zip(vs.template_ids.tolist(), vs.vectors, strict=True))
            labels = store.photo_labels(person.id)  # the real digests, unsealed
            items = []
            for t in templates:
                if t.id not in vectors:  # erased meanwhile
                    continue
                vector = np.asarray(vectors[t.id], dtype="<f4")
                label = labels.get(t.photo_id) if t.photo_id is not None else None
                sha = None if label is None else label.sha256
                data = store.photo_bytes(t.photo_id) if photos and t.photo_id is not None else None
                items.append(
                    {
                        "vector": base64.b64encode(vector.tobytes()).decode("ascii"),
                        "quality": t.quality,
                        "bbox": None if t.bbox is None else t.bbox.as_list(),
                        "flags": list(t.flags),
                        "source": t.source,
                        "sha256": sha or _vector_sha(vector),
                        "photo": None if data is None else base64.b64encode(data).decode("ascii"),
                    }
                )
            people.append(
                {
                    "name": person.name,
                    "external_id": person.external_id or None,
                    "metadata": dict(person.metadata),
                    "templates": items,
                }
            )
    return {
        "model_id": store.model_id,
        "dim": int(store.meta("dim") or 0),
        "exported_at": now(),
        "faceindex": __version__,
        "people": people,
    }


def _vector_sha(vector: np.ndarray) -> str:
    """A stand-in photo hash for a template with no photo row, so re-imports skip it."""
    return "template:" + hashlib.sha256(np.asarray(vector, dtype="<f4").tobytes()).hexdigest()


def read_export(data: bytes, key: TemplateKey | None) -> dict[str, Any]:
    """The document of an export file; :class:`InvalidInputError` saying what is wrong."""
    newline = data.find(b"\n", 0, _MAX_HEADER)
    if newline < 0:
        raise InvalidInputError("not a faceindex gallery export (no header)")
    head, payload = data[: newline + 1], data[newline + 1 :]
    try:
        header = json.loads(head)
    except ValueError:
        raise InvalidInputError("not a faceindex gallery export (bad header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInputError("not a faceindex gallery export")
    if header.get("version") != VERSION:
        raise InvalidInputError(
            f"export format version {header.get('version')!r} is not supported (this "
            f"faceindex reads version {VERSION}): upgrade faceindex"
        )
    if header.get("sealed"):
        needed = header.get("key_id")
        if key is None:
            raise InvalidInputError(
                f"this export is encrypted (key id {needed}): import it into a gallery "
                "opened with that key (--key-file or FACEINDEX_KEY)",
                key_id=needed,
            )
        if key.key_id != needed:
            raise InvalidInputError(
                f"this export was encrypted with key id {needed}; the gallery's key has id "
                f"{key.key_id}: import it with the key it was exported with",
                needed=needed,
                given=key.key_id,
            )
        try:
            payload = key.decrypt(payload, head)
        except StorageError:
            raise InvalidInputError("the export file is damaged or was altered") from None
    try:
        document = json.loads(gzip.decompress(payload))
    except (OSError, EOFError, zlib.error, ValueError):
        raise InvalidInputError("the export file is damaged (its contents do not read)") from None
    if not isinstance(document, dict) or not isinstance(document.get("people"), list):
        raise InvalidInputError("the export file is damaged (no list of people)")
    return document


def import_gallery(store: GalleryStore, data: bytes, *, model_id: str, actor: str) -> ImportReport:
    """Add an export file's people and templates to the gallery (see the module doc).

    ``model_id``: the model the gallery's templates must come from (its bound model, else
    its pipeline's).
    """
    document = read_export(data, store.sealer.key)
    people = document["people"]
    theirs = document.get("model_id")
    has_templates = any(p.get("templates") for p in people if isinstance(p, dict))
    if has_templates and theirs != model_id:
        raise EmbeddingModelMismatchError(
            f"the export holds {theirs!r} templates; this gallery uses {model_id!r}: "
            "import into a gallery of the same model (or re-embed one of them first)",
            export_model=theirs,
            gallery_model=model_id,
        )
    created = merged = added = skipped = 0
    with store.transaction() as conn:
        for i, person in enumerate(people):
            where = f"person {i + 1} of the export"
            if not isinstance(person, dict) or not isinstance(person.get("name"), str):
                raise InvalidInputError(f"the export file is damaged ({where} has no name)")
            templates = person.get("templates") or []
            person_id = store.find_person_id(conn, person["name"])
            if person_id is None:
                external_id = person.get("external_id")
                if external_id and _external_id_taken(conn, external_id):
                    external_id = None  # kept by the person who has it here
                person_id = store.create_person(
                    conn,
                    person["name"],
                    external_id=external_id,
                    metadata=person.get("metadata") or None,
                )
                created += 1
            else:
                merged += 1
            for item in templates:
                if _add_template(store, conn, person_id, item, model_id, where):
                    added += 1
                else:
                    skipped += 1
        store.audit(
            conn,
            "import",
            actor=actor,
            details={
                "people_created": created,
                "people_merged": merged,
                "templates_added": added,
                "skipped": skipped,
            },
        )
    return ImportReport(created, merged, added, skipped)


def _external_id_taken(conn: Any, external_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM persons WHERE external_id = ?", (external_id,)).fetchone()
    return row is not None


def _add_template(
    store: GalleryStore, conn: Any, person_id: int, item: Any, model_id: str, where: str
) -> bool:
    """Add one exported template (False: its photo is already enrolled, skipped)."""
    try:
        sha = str(item["sha256"])
        raw = base64.b64decode(item["vector"], validate=True)
        vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        embedding = Embedding(vector, model_id)
        box = item.get("bbox")
        bbox = BBox(*(float(v) for v in box)) if box else None
        photo = item.get("photo")
        data = base64.b64decode(photo, validate=True) if photo else None
        flags = tuple(str(f) for f in item.get("flags") or ())
        quality = item.get("quality")
        quality = None if quality is None else float(quality)
        source = item.get("source")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidInputError(f"the export file is damaged (a template of {where})") from exc
    if store.photo_owners(sha):
        return False
    dim = store.meta("dim")
    if dim is not None and embedding.dim != int(dim):
        raise EmbeddingModelMismatchError(
            f"the export's templates have {embedding.dim} values; this gallery's {dim}"
        )
    photo_id = store.add_photo(
        conn, person_id, sha, source=None if source is None else str(source), data=data
    )
    store.add_template(
        conn, person_id, embedding, photo_id=photo_id, quality=quality, bbox=bbox, flags=flags
    )
    return True
