"""Small files of a render written atomically: a temp file in the same directory, then renamed.

A killed render leaves either the old file or the new one under the final name, never half of
one; the temp file (``name.<uuid>.partial.ext``) is removed on any error.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "summary.json"
>>> write_text_atomically(path, "{}")
>>> path.read_text(), [p.name for p in path.parent.iterdir()]
('{}', ['summary.json'])
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["write_text_atomically"]


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and ``os.replace``."""
    partial = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
