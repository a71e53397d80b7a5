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
"""

from __future__ import annotations

from dataclasses import dataclass

from faceindex.crypto import KeyMismatchError, KeyRequiredError, TemplateKey


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


def template_context(template_id: int, model_id: str) -> bytes:
    return f"template:{template_id}:{model_id}".encode()


def photo_context(person_id: int, sha256: str) -> bytes:
    return f"photo:{person_id}:{sha256}".encode()
