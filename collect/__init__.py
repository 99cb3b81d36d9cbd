"""evalframes collect: what runs inside an eval worker.

The frame store format (:mod:`collect.store`), the writer (:mod:`collect.writer`), observation
adapters (:mod:`collect.adapters`), frame codecs (:mod:`collect.codecs`), and the eval runner
(``python -m collect CONFIG.yaml``, in :mod:`collect.eval`).
"""

from .adapters import FrameInputError, normalize_camera_name
from .codecs import available_codecs, get_codec
from .store import FrameStore, GroupReader, StoreFormatError, group_name, open_store
from .writer import FrameWriter, WriterError, WriterStats


def __getattr__(name: str) -> object:
    # RecordFrames needs gymnasium (the "sim" extra): import it only when asked for.
    if name == "RecordFrames":
        from .wrappers import RecordFrames

        return RecordFrames
    raise AttributeError(f"module 'collect' has no attribute {name!r}")


__all__ = [
    "FrameInputError",
    "FrameStore",
    "FrameWriter",
    "GroupReader",
    "RecordFrames",
    "StoreFormatError",
    "WriterError",
    "WriterStats",
    "available_codecs",
    "get_codec",
    "group_name",
    "normalize_camera_name",
    "open_store",
]
