"""Train/validation split shared by the three models (reference section 2.8).

An item goes to validation iff its lowercase hex md5 compares greater than ``'bf'`` as a string, so
digests starting with ``bf``, ``c``..``f`` are validation (65/256 ≈ 25.4 %). Keeping the exact rule makes
our splits identical to the original tools' for the same files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

SPLIT_CUT = "bf"
Split = Literal["train", "validation"]


def split_for_md5(md5_hex: str) -> Split:
    return "validation" if md5_hex.lower() > SPLIT_CUT else "train"


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_file(path: str | Path, chunk_size: int = 32768) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
