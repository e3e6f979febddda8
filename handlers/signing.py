"""Signed verdicts: the Ed25519 signature a valid loader verdict carries (docs/loader-security.md).

Keys: one Ed25519 key pair per project and key id (``kid``), derived, never stored: its seed
is HMAC-SHA256(signing secret, ``"leaf7 ed25519 v1|" + project_id + "|" + kid``). Redis holds
only key ids and times (store/lua/signing_key.lua); every instance that shares the signing
secret derives the same keys.

What is signed: each valid answer's *leaf*, a canonical byte string (``leaf``) that binds the
loader's nonce, the times, the project, the key, the HWID and the chunk the loader will run.
The answers signed together (the valid ones of one script call's batch, per key id:
handlers/verdicts.py) share one signature over the root of a Merkle tree of their leaves; each
answer carries its leaf's path. One signature costs ~20 us of CPU, a third of what the whole
check costs: signing once per batch keeps signed checks near the unsigned rate at saturation,
and an answer alone in its batch is a tree of one leaf (an empty path).
"""

import hashlib
import hmac
import json
from collections.abc import Sequence

from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

LEAF_TAG = b"leaf7-verdict-v1"
ROOT_TAG = b"leaf7-batch-v1"
# Seconds a signed verdict is valid after it was issued (the loader allows MAX_SKEW more).
LIFETIME = 60
# Leaves per signature at most (a path of at most 6 steps).
MAX_BATCH = 64
_KEY_INFO = "leaf7 ed25519 v1|{}|{}"
_SIGNING_SECRET_INFO = b"leaf7 signing secret v1"


def signing_secret_from(server_secret: bytes) -> bytes:
    """The signing secret derived from the server secret (when LEAF7_SIGNING_SECRET is unset):
    a domain-separated HMAC, so it is neither the secret that keys API key hashes nor
    computable without it."""
    return hmac.new(server_secret, _SIGNING_SECRET_INFO, hashlib.sha256).digest()


def seed(secret: bytes, project_id: str, kid: str) -> bytes:
    """The 32-byte Ed25519 seed of a project's key ``kid``."""
    info = _KEY_INFO.format(project_id, kid).encode()
    return hmac.new(secret, info, hashlib.sha256).digest()


# Every hash of the scheme but Ed25519's own: SHA-256 (in the loader's pure-Lua verifier it
# hashes a 64 KiB script about twice as fast as SHA-512 under Luau).
def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def text_hash(value: str) -> bytes:
    """The lowercase hex digest of a string's UTF-8 bytes (a script key, a HWID)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest().encode()


def chunk_hash(prelude_hash: bytes, source_hash: bytes) -> bytes:
    """The hash of the chunk the loader runs, ``prelude + source``, from the digest of each
    part (the source's is computed once per revision)."""
    return hashlib.sha256(prelude_hash + source_hash).digest()


def leaf(
    kid: str,
    project_id: str,
    nonce: str,
    issued: int,
    expires: int,
    key_hash: bytes,
    hwid_hash: bytes,
    split: int,
    chunk_hex: bytes,
) -> bytes:
    """The canonical byte string of a valid verdict: one field per line, each ended by LF
    (no field can hold one: hex, decimal, a UUID, fixed words). ``key_hash`` and ``hwid_hash``
    are lowercase hex SHA-256s (``text_hash``); ``split`` is the prelude's length in bytes;
    ``chunk_hex`` the chunk hash's lowercase hex (the answer carries it too: encoded once)."""
    return b"%b\n%b\n%b\nKEY_VALID\n%b\n%d\n%d\n%b\n%b\n%d\n%b\n" % (
        LEAF_TAG, kid.encode(), project_id.encode(), nonce.encode(), issued, expires,
        key_hash, hwid_hash, split, chunk_hex,
    )  # fmt: skip


def root_message(kid: str, root: bytes) -> bytes:
    """What Ed25519 signs: the tag, the key id and the Merkle root (hex), each line LF-ended."""
    return b"%b\n%b\n%b\n" % (ROOT_TAG, kid.encode(), root.hex().encode())


def merkle(leaves: Sequence[bytes]) -> tuple[bytes, list[list[str]]]:
    """The root of ``leaves`` and each leaf's path. A leaf's node is SHA-256(0x00 || leaf), an
    inner node SHA-256(0x01 || left || right); an odd last node goes up unchanged. A path
    step is ``"l"`` or ``"r"`` (the side of the sibling) and the sibling's hex."""
    root, paths = merkle_json(leaves)
    return root, [json.loads(path) for path in paths]


def merkle_json(leaves: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """``merkle``, each path as the JSON array the answer carries: every node is hashed and
    hex-encoded once, and each step's JSON string made once for all the leaves under it."""
    sha256 = hashlib.sha256
    level = [sha256(b"\x00" + item).digest() for item in leaves]
    count = len(level)
    if count == 1:
        return level[0], [b"[]"]
    steps: list[list[bytes]] = [[] for _ in leaves]
    width = 1  # leaves under each node of this level
    while len(level) > 1:
        size = len(level)
        for j in range(size):
            sibling = j ^ 1
            if sibling < size:
                step = (b'"l' if sibling < j else b'"r') + level[sibling].hex().encode() + b'"'
                for i in range(j * width, min((j + 1) * width, count)):
                    steps[i].append(step)
        level = [
            sha256(b"\x01" + level[j] + level[j + 1]).digest() if j + 1 < size else level[j]
            for j in range(0, size, 2)
        ]
        width *= 2
    return level[0], [b"[" + b",".join(path) + b"]" for path in steps]


# What signing leaves gives: the signature (128 hex digits) and each leaf's path (JSON arrays).
Batch = tuple[bytes, list[bytes]]


class Signer:
    """Signs verdict leaves: one signature over the Merkle root of each batch of leaves."""

    def __init__(self, secret: bytes, *, cache_size: int = 1024) -> None:
        self._secret = secret
        # (project, kid) -> (public key, libsodium's 64-byte secret key: seed || public key)
        self._keys: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._cache_size = cache_size
        self.signatures = 0  # made so far, and the leaves they covered (tests, the log)
        self.leaves = 0

    def __repr__(self) -> str:  # never the secret
        return "Signer()"

    def _key(self, project_id: str, kid: str) -> tuple[bytes, bytes]:
        found = self._keys.get((project_id, kid))
        if found is None:
            if len(self._keys) >= self._cache_size:
                del self._keys[next(iter(self._keys))]
            found = crypto_sign_seed_keypair(seed(self._secret, project_id, kid))
            self._keys[(project_id, kid)] = found
        return found

    def public_key(self, project_id: str, kid: str) -> bytes:
        return self._key(project_id, kid)[0]

    def sign_leaves(self, project_id: str, kid: str, leaves: Sequence[bytes]) -> Batch:
        """One signature over the root of ``leaves`` (at most MAX_BATCH: a path of at most 6
        steps) and each leaf's path, in order."""
        if not 0 < len(leaves) <= MAX_BATCH:
            raise ValueError(f"1 to {MAX_BATCH} leaves per signature")
        root, paths = merkle_json(leaves)
        # libsodium's crypto_sign: the signature, then the message (not needed)
        signature = crypto_sign(root_message(kid, root), self._key(project_id, kid)[1])[:64]
        self.signatures += 1
        self.leaves += len(leaves)
        return signature.hex().encode(), paths
