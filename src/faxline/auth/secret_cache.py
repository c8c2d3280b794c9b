"""Secrets that verified recently, so that a client's correct secret is not hashed with
argon2 on every token request.

Nothing of the secret is kept: the key is a keyed BLAKE2b of client id and secret under a
key made per process, the value the app's secret hash at the time. A hit needs the app's
current hash to be that one, so a re-keyed app misses at once. Bounded in size (least
recently used go first) and in time. Sans-I/O: time is a parameter.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict


class VerifiedSecrets:
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def _digest(self, client_id: str, secret: str) -> bytes:
        h = hashlib.blake2b(key=self._key, digest_size=32)
        # Lengths first, so that no two (id, secret) pairs give the same input.
        ident, sec = client_id.encode(), secret.encode()
        h.update(len(ident).to_bytes(4, "big") + ident + sec)
        return h.digest()

    def knows(self, client_id: str, secret: str, secret_hash: str | None, now: float) -> bool:
        """Whether this secret verified against this very `secret_hash` within the TTL."""
        if secret_hash is None:
            return False
        digest = self._digest(client_id, secret)
        entry = self._entries.get(digest)
        if entry is None:
            return False
        cached_hash, expires = entry
        if expires <= now or not secrets.compare_digest(cached_hash, secret_hash):
            del self._entries[digest]
            return False
        self._entries.move_to_end(digest)
        return True

    def remember(self, client_id: str, secret: str, secret_hash: str, now: float) -> None:
        if self.ttl_s <= 0:
            return
        digest = self._digest(client_id, secret)
        self._entries.pop(digest, None)
        self._entries[digest] = (secret_hash, now + self.ttl_s)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
