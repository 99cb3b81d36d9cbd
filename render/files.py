"""Small files of a render written atomically: a temp file in the same directory, then renamed.

A killed render leaves either the old file or the new one under the final name, never half of
one; the temp file (``name.<uuid>.partial``) is removed on any error.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "summary.json"
>>> write_text_atomically(path, "{}")
>>> path.read_text(), [p.name for p in path.parent.iterdir()]
('{}', ['summary.json'])
"""

from __future__ import annotations

from pathlib import Path

from collect.store import replace_file

__all__ = ["write_text_atomically"]


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and a rename
    (:func:`collect.store.replace_file`, the one writer of files that readers may open)."""
    replace_file(path, [text.encode("utf-8")])
