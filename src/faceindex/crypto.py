"""Template encryption at rest with AES-256-GCM (``cryptography``).

A key is 32 random bytes, given as a key file (raw 32 bytes, or base64/hex text) or as
base64/hex text (``FACEINDEX_KEY``, read into the settings at the entry points). Its
*key id* is the first 16 hex digits of SHA-256("faceindex-key-id" + key): stored with every
encrypted row, so a gallery can say which key it needs, and a wrong key is recognised
before any decryption is tried instead of producing garbage.

Each row is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``; the associated data binds
a ciphertext to its row's context (template id, model id), so that ciphertexts cannot
be swapped between rows undetected.

A value that must be found by equality without being readable (a photo's SHA-256, for
duplicate detection) is stored as a *keyed lookup*: HMAC-SHA256 under a subkey derived
from the key with HKDF-SHA256 and a fixed label (:meth:`TemplateKey.lookup`). The AES key
itself is never used for anything but AES-GCM, and without the key a lookup cannot be
tested against a known photo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import ConfigError, StorageError

KEY_BYTES = 32
NONCE_BYTES = 12
#: The HKDF label of the subkey that keyed lookups are made with (:meth:`TemplateKey.lookup`).
LOOKUP_LABEL = b"faceindex/v1/lookup-subkey"


class KeyMismatchError(ConfigError):
    """The key given is not the one the data was encrypted with."""

    code = "wrong_key"


class KeyRequiredError(ConfigError):
    """The gallery holds encrypted templates and no key was given."""

    code = "key_required"


@dataclass(frozen=True, slots=True)
class TemplateKey:
    material: bytes

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ConfigError(f"an encryption key must be {KEY_BYTES} bytes")

    def __repr__(self) -> str:  # never leak key material into logs
        return f"TemplateKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"faceindex-key-id" + self.material).hexdigest()[:16]

    @classmethod
    def generate(cls) -> TemplateKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> TemplateKey:
        s = text.strip()
        for decode in (_hex, _b64):
            raw = decode(s)
            if raw is not None and len(raw) == KEY_BYTES:
                return cls(raw)
        raise ConfigError(f"a key must be {KEY_BYTES} bytes written as base64 or hex")

    @classmethod
    def from_file(cls, path: str | Path) -> TemplateKey:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read key file {p}: {exc.strerror}") from exc
        if len(data) == KEY_BYTES:
            return cls(data)
        try:
            return cls.from_text(data.decode("ascii"))
        except UnicodeDecodeError:
            raise ConfigError(f"key file {p} holds neither 32 raw bytes nor text") from None

    def to_text(self) -> str:
        return base64.b64encode(self.material).decode("ascii")

    def subkey(self, label: bytes) -> bytes:
        """A 32-byte key for another purpose than AES-GCM, derived with HKDF-SHA256 (no
        salt: the key is already uniformly random) and ``label`` as its info."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(
            self.material
        )

    def lookup(self, value: bytes) -> str:
        """A keyed, deterministic stand-in for ``value`` (HMAC-SHA256 under the lookup
        subkey, hex): equal values give equal lookups, and nobody without the key can
        compute one."""
        return hmac.new(self.subkey(LOOKUP_LABEL), value, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.material).encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self.material).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
        except InvalidTag:
            raise StorageError(
                "an encrypted template failed its integrity check (tampered or corrupted)"
            ) from None


def _hex(s: str) -> bytes | None:
    try:
        return bytes.fromhex(s)
    except ValueError:
        return None


def _b64(s: str) -> bytes | None:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
