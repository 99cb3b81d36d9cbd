"""evalframes render: turn a frame store into one MP4 per env, offline, on Dask.

``python -m render STORE OUT`` or :func:`render_store`. One module per concern:

* :mod:`render.options`: :class:`RenderOptions`, every option in one validated config;
* :mod:`render.compose`: layouts (``behavior``, ``hstack``, ``grid``, ``separate``);
* :mod:`render.reader`: blocks of rows through collect's reader, read ahead in a thread;
* :mod:`render.encode`: one ffmpeg process per video, atomic output, checked frame count;
* :mod:`render.plan`: which videos to write (per env, per camera, per episode) and which are
  up to date;
* :mod:`render.episodes`: episodes, returns and outcomes (success, failure, unknown), as the
  overlay, summary, gallery and run report show them;
* :mod:`render.overlay`: text and outcome borders drawn on the frames (``--overlay``);
* :mod:`render.mosaic`: every env tiled in one extra video (``--mosaic``);
* :mod:`render.pipeline`: rendering one video (the Dask task);
* :mod:`render.segments`: long videos cut into segments encoded in parallel, joined by copy;
* :mod:`render.job`: the Dask graph on threads, a local cluster or a remote scheduler;
* :mod:`render.gallery`: ``index.html`` and posters (``--gallery``);
* :mod:`render.report`: results, the summary table and ``--list``;
* :mod:`render.run_report`: ``episodes.csv`` and ``summary.json``, written by every render;
* :mod:`render.files`: small files written atomically (temp file, then rename);
* :mod:`render.api` and :mod:`render.cli`: the two entry points.
"""

from .api import render_store
from .compose import Layout, UnknownLayoutError, available_layouts, get_layout, register_layout
from .encode import EncodeError, UnknownCodecError
from .options import RenderOptions
from .report import OutputResult, RenderReport

__all__ = [
    "EncodeError",
    "Layout",
    "OutputResult",
    "RenderOptions",
    "RenderReport",
    "UnknownCodecError",
    "UnknownLayoutError",
    "available_layouts",
    "get_layout",
    "register_layout",
    "render_store",
]
