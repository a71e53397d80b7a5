"""Encryption at rest, as a layer the store is given.

The store writes and reads opaque blobs; a :class:`Sealer` turns plaintext into what is
stored (AES-256-GCM ciphertext tagged with its key id when a key is set, the bytes
themselves otherwise) and back. The associated data binds each blob to its row, so blobs
cannot be swapped between rows undetected. Rotating keys is a re-seal with a second sealer
(:meth:`faceindex.gallery.store.SqliteStore.reseal`), never a key swapped in place.

A gallery opened with a key that still holds plaintext templates or kept photos (enrolled
before a key was set, or after ``encryption-key rotate --decrypt``) has them sealed with
that key at once, in one transaction with a ``keys_seal`` audit entry, and the WAL is
truncated like after an erasure so that the plaintext does not linger. This was chosen
over refusing to open: refusing would leave no way to open a gallery mixing plaintext
with blobs sealed by the very key given, and giving a key means "encrypt at rest". Blobs
sealed with another key are left as they are (reading them still fails with
:class:`~faceindex.crypto.KeyMismatchError`); to decrypt, use ``rotate --decrypt``.

**Photo hashes and source names.** A photo row says which photo it came from: its SHA-256
(duplicate detection) and its source (the file name or label given at enrolment). In the
clear, a digest is a fingerprint anyone holding a photo can test, and a file name is often
a person's name. So with a key, :meth:`Sealer.seal_label` stores instead:

- a *keyed lookup* in place of the digest (``photos.sha256``): HMAC-SHA256 under a subkey
  derived from the key (:meth:`faceindex.crypto.TemplateKey.lookup`), so duplicates are
  still found by equality (:meth:`Sealer.lookup` of a new photo's digest), but only by
  someone with the key;
- the digest and source together, sealed (``photos.label``, key id in
  ``photos.label_key_id``), bound to the row's id and lookup; the plain ``source`` column
  is NULL. The digest is kept (sealed) because a new key needs new lookups: rotation
  re-derives them from it, and ``rotate --decrypt`` puts it back in the clear.

Without a key the digest and source stay plain, as before (a gallery without a key keeps
nothing secret from whoever has its file). A row with plain ones in a gallery opened with
a key is converted with the templates and photos above. A row sealed under another key
keeps that key's lookup, so it is not found as a duplicate (its template cannot be read
either) until ``rotate`` is run with the key it was sealed with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from faceindex.crypto import KeyMismatchError, KeyRequiredError, TemplateKey
from faceindex.errors import StorageError


@dataclass(frozen=True, slots=True)
class Sealer:
    """Seals blobs with ``key`` (or leaves them in the clear when ``key`` is None)."""

    key: TemplateKey | None = None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.key_id

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[bytes, str | None]:
        """The blob to store and the id of the key that sealed it (None = clear)."""
        if self.key is None:
            return plaintext, None
        return self.key.encrypt(plaintext, associated), self.key.key_id

    def open(self, blob: bytes, key_id: str | None, associated: bytes) -> bytes:
        """The plaintext of a stored blob; a clear error when its key is missing or wrong."""
        if key_id is None:
            return blob
        if self.key is None:
            raise KeyRequiredError(
                "this gallery's templates are encrypted: give the key (--key-file or "
                "FACEINDEX_KEY)",
                key_id=key_id,
            )
        if self.key.key_id != key_id:
            raise KeyMismatchError(
                f"wrong key: the gallery was encrypted with key id {key_id}, the key given "
                f"has id {self.key.key_id}",
                needed=key_id,
                given=self.key.key_id,
            )
        return self.key.decrypt(blob, associated)

    def lookup(self, sha256: str) -> str:
        """What ``photos.sha256`` holds for a photo of this digest: the digest itself in
        the clear, else its keyed lookup."""
        return sha256 if self.key is None else self.key.lookup(sha256.encode())

    def seal_label(self, photo_id: int, label: PhotoLabel) -> StoredLabel:
        """The columns that record ``label`` for photo row ``photo_id``."""
        lookup = self.lookup(label.sha256)
        if self.key is None:
            return StoredLabel(lookup, label.source, None, None)
        plain = json.dumps({"sha256": label.sha256, "source": label.source}).encode()
        blob, key_id = self.seal(plain, label_context(photo_id, lookup))
        return StoredLabel(lookup, None, blob, key_id)

    def open_label(self, photo_id: int, stored: StoredLabel) -> PhotoLabel:
        """The digest and source of a photo row (its lookup is the digest when clear)."""
        if stored.key_id is None or stored.sealed is None:
            return PhotoLabel(stored.lookup, stored.source)
        plain = self.open(stored.sealed, stored.key_id, label_context(photo_id, stored.lookup))
        try:
            fields = json.loads(plain)
            return PhotoLabel(str(fields["sha256"]), _optional_str(fields["source"]))
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"photo #{photo_id}'s sealed label is damaged") from None


@dataclass(frozen=True, slots=True)
class PhotoLabel:
    """Which photo a photo row came from: its SHA-256 (hex) and source name."""

    sha256: str
    source: str | None


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """A :class:`PhotoLabel` as stored: ``photos.sha256`` (the lookup), ``photos.source``,
    ``photos.label`` and ``photos.label_key_id`` (None: the first two are plain)."""

    lookup: str
    source: str | None
    sealed: bytes | None
    key_id: str | None


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("not a string")
    return value


def label_context(photo_id: int, lookup: str) -> bytes:
    return f"photo-label:{photo_id}:{lookup}".encode()


def template_context(template_id: int, model_id: str) -> bytes:
    return f"template:{template_id}:{model_id}".encode()


def photo_context(person_id: int, sha256: str) -> bytes:
    """A kept photo's associated data: its person and its digest (the real SHA-256, never
    the lookup, so that re-deriving lookups leaves kept photos' seals as they are)."""
    return f"photo:{person_id}:{sha256}".encode()
