"""Attachment files, stored once on disk by content hash: ``attachments/ab/cd/<sha256>``.

The path is made from the hash alone, never from the sender's file name, so no name can
escape the directory. Files are written tmp + rename (a reader never sees half a file);
they are not fsynced: each can be re-made from the archived raw message.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        target = self.path(sha256)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha256}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target
