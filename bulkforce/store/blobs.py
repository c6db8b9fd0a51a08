"""Upload storage on disk: uploads stream to a temp file and are renamed into place when whole."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class FileBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.csv"

    def open_temp(self, key: str) -> tuple[BinaryIO, Path]:
        tmp = self.root / f"{key}.{os.getpid()}.{id(self)}.part"
        return tmp.open("wb"), tmp

    def commit(self, tmp: Path, key: str) -> None:
        os.replace(tmp, self.path(key))

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
