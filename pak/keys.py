"""The centre's signing keys (Ed25519) and the edge list's hash key.

Invariants:

- A :class:`Signer` holds the centre's private key and names itself (``issuer``, the service
  that signs: ``tracker``, ``api``, ``watchlist``); a :class:`Verifier` holds one or two public
  keys (two during a rotation: the old and the new) and nothing secret. Both are plain
  objects handed to whoever needs them: no module state, so tests make their own.
- A key id (``kid``) is the first 8 bytes of SHA-256 of the raw 32-byte public key, in hex:
  a verifier picks its key by ``kid`` and refuses an unknown one.
- A signer's revisions (:meth:`Signer.next_rev`) grow strictly: the centre's clock in
  milliseconds, or one more than the last when the clock has not moved past it. Only centre
  clocks make revisions; receivers compare revisions, never their own clock.
- ``pak keys init`` (:func:`init_keys`) writes ``centre.key`` (PKCS#8 PEM, mode 600),
  ``centre.pub`` (SubjectPublicKeyInfo PEM) and ``edge.key`` (32 random bytes, mode 600)
  and never overwrites an existing key.

``cryptography`` is imported here only, and only by services that sign or verify.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pak.errors import ConfigError
from pak.timefmt import to_millis, utcnow

__all__ = [
    "CENTRE_KEY",
    "CENTRE_PUB",
    "EDGE_KEY",
    "Signer",
    "Verifier",
    "init_keys",
    "key_id",
    "load_signer",
    "load_verifier",
]

CENTRE_KEY: Final = "centre.key"
CENTRE_PUB: Final = "centre.pub"
EDGE_KEY: Final = "edge.key"
#: At most this many public keys at once: the current one and the one being rotated in/out.
MAX_KEYS: Final = 2


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pub: Ed25519PublicKey) -> str:
    """The key's id: first 8 bytes of SHA-256 of its raw public bytes, hex."""
    return hashlib.sha256(_raw(pub)).hexdigest()[:16]


class Signer:
    """Signs control messages with the centre's private key, as ``issuer``."""

    def __init__(self, key: Ed25519PrivateKey, issuer: str, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._key = key
        self.issuer = issuer
        self.kid = key_id(key.public_key())
        self._clock = clock
        self._last_rev = 0
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, issuer: str, **kw: Callable[[], datetime]) -> Signer:
        """A signer with a fresh key (tests, ``pak demo``)."""
        return cls(Ed25519PrivateKey.generate(), issuer, **kw)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verifier(self) -> Verifier:
        """A verifier of this signer's public key (a centre service checking its peers)."""
        return Verifier([self.public_key])

    def next_rev(self) -> int:
        """A revision larger than every one this signer gave before (thread-safe)."""
        with self._lock:
            self._last_rev = max(to_millis(self._clock()), self._last_rev + 1)
            return self._last_rev


class Verifier:
    """Checks signatures against one or two public keys, picked by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}
        if not 1 <= len(self._keys) <= MAX_KEYS:
            raise ValueError(f"a verifier holds 1 or {MAX_KEYS} public keys, "
                             f"not {len(self._keys)}")

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, kid: str, sig: bytes, data: bytes) -> bool:
        """True when ``sig`` is the signature of ``data`` by the key named ``kid``."""
        key = self._keys.get(kid)
        if key is None:
            return False
        try:
            key.verify(sig, data)
        except InvalidSignature:
            return False
        return True


def load_signer(path: Path, issuer: str, setting: str = "signing_key") -> Signer:
    """The signer in a ``centre.key`` file; ConfigError naming ``setting``."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"setting {setting}: cannot read {path}: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"setting {setting}: {path} is not an Ed25519 private key")
    return Signer(key, issuer)


def _load_public(path: Path, setting: str) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
        key: object
        if b"PRIVATE KEY" in data:
            # Accept the private key file too (a single-box site): use only its public half.
            priv = serialization.load_pem_private_key(data, password=None)
            key = priv.public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"setting {setting}: cannot read {path}: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"setting {setting}: {path} is not an Ed25519 public key")
    return key


def load_verifier(paths: Iterable[Path], setting: str = "centre_key") -> Verifier:
    """A verifier of the public keys in ``paths`` (one, or two during a rotation)."""
    keys = [_load_public(p, setting) for p in paths]
    try:
        return Verifier(keys)
    except ValueError as e:
        raise ConfigError(f"setting {setting}: {e}") from None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # whatever the umask


def init_keys(directory: Path) -> list[Path]:
    """Write a new centre key pair and edge key into ``directory``; the files written.
    Refuses (FileExistsError) when any of them exists: a key is never silently replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / n for n in (CENTRE_KEY, CENTRE_PUB, EDGE_KEY)]
    for p in paths:
        if p.exists():
            raise FileExistsError(f"{p} exists: move it away to make a new key")
    key = Ed25519PrivateKey.generate()
    _write_private(paths[0], key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths[1].write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    _write_private(paths[2], secrets.token_bytes(32))  # raw bytes (pak.edge_key reads them)
    return paths
