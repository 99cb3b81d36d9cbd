"""Encoding: one ffmpeg process per output video, fed raw rgb24 frames through a pipe.

:class:`VideoEncoder` owns its ffmpeg process from start to end. Frames go to ffmpeg's stdin;
its stderr is drained by a thread that keeps only the last lines (an unread pipe would block
ffmpeg), and those lines plus the exact command go into every error. The video is written to
``<name>.<uuid4hex>.partial.mp4`` next to the final path and renamed only after ffmpeg exited
with status 0 and the file holds as many frames as were written, so a crash or a kill never
leaves a truncated video under the final name (the frame count comes from the file's MP4
index, see :mod:`render.mp4`). ffmpeg runs in its own session, so Ctrl-C reaches only Python,
which then removes the partial file. :func:`run_ffmpeg` runs the short ffmpeg jobs that read
finished videos (joining segments, taking posters) with the same error reporting.

Resizing happens in ffmpeg's scaler, together with the rgb -> yuv conversion it does anyway
(measured cheaper than numpy or PIL at 480x480 when the renderer was planned), and so does
making the dimensions even. A picture of another aspect ratio than the requested size is
padded (the default), cropped or stretched to it (:data:`FITS`). How ffmpeg encodes is one
frozen :class:`EncoderSettings`, whose defaults are the only ones.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "demo.mp4"
>>> with VideoEncoder(path, 64, 48, fps=10) as encoder:
...     encoder.write(np.zeros((5, 48, 64, 3), np.uint8))
>>> encoder.frames, sorted(p.name for p in path.parent.glob("*.mp4"))
(5, ['demo.mp4'])
>>> list(path.parent.glob(".render/partial/*"))  # the partial file was renamed
[]
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import shlex
import subprocess
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import imageio_ffmpeg
import numpy as np

from . import mp4

__all__ = [
    "FITS",
    "EncodeError",
    "EncoderSettings",
    "UnknownCodecError",
    "VideoEncoder",
    "available_encoders",
    "check_codec",
    "check_frame_count",
    "ffmpeg_command",
    "output_size",
    "partial_path",
    "run_ffmpeg",
    "start_ffmpeg",
]

log = logging.getLogger(__name__)
WORK_DIR = ".render"  # hidden folder in OUT: partial videos, sidecars, segments

STDERR_LINES = 30  # lines of ffmpeg's stderr kept for error messages
PIPE_BYTES = 1 << 20  # frames pipe size; Linux's default maximum for unprivileged users
FINISH_TIMEOUT = 300.0  # seconds ffmpeg may take to flush its lookahead and mux after EOF
SUGGESTED_CODECS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1", "mpeg4")
FITS = ("pad", "crop", "stretch")  # a picture into a size of another aspect ratio


@dataclass(frozen=True)
class EncoderSettings:
    """How ffmpeg encodes a video.

    Args:
        codec: ffmpeg video encoder (``libx264`` plays everywhere).
        crf: constant rate factor (lower is better; 23 is x264's default); ``None`` omits it,
            for encoders without one.
        preset: encoder speed/size preset; ``None`` omits it.
        threads: threads per encoder (x264 ``-threads``); ``None`` lets ffmpeg choose (all
            cores). Use 1 with one Dask worker per core.
        pixel_format: what the video stores (``yuv420p``: what browsers and most players
            decode; it needs even dimensions).
    """

    codec: str = "libx264"
    crf: int | None = 23
    preset: str | None = "medium"
    threads: int | None = None
    pixel_format: str = "yuv420p"

    def args(self) -> list[str]:
        """ffmpeg's output-side arguments for these settings."""
        args = ["-c:v", self.codec, "-pix_fmt", self.pixel_format]
        if self.crf is not None:
            args += ["-crf", str(self.crf)]
        if self.preset is not None:
            args += ["-preset", self.preset]
        if self.threads is not None:
            args += ["-threads", str(self.threads)]
        return args


class EncodeError(RuntimeError):
    """ffmpeg failed, or wrote a file with the wrong frame count; says why and how it ran."""


class UnknownCodecError(ValueError):
    """A video codec the bundled ffmpeg has no encoder for."""

    def __init__(self, codec: str) -> None:
        known = [c for c in SUGGESTED_CODECS if c in available_encoders()]
        super().__init__(
            f"unknown video codec {codec!r}: ffmpeg has no such encoder; "
            f"try {', '.join(known)} (`ffmpeg -encoders` lists all)"
        )


@lru_cache
def available_encoders() -> tuple[str, ...]:
    """Names of the video encoders of the bundled ffmpeg (a tuple: the cache stays intact)."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"]
    listing = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    names = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2 and len(fields[0]) == 6 and fields[0].startswith("V"):
            names.append(fields[1])
    return tuple(names)


@lru_cache
def check_codec(settings: EncoderSettings) -> None:
    """Raise unless ffmpeg can encode with ``settings`` (a 1-frame trial).

    :class:`UnknownCodecError` for an encoder ffmpeg lacks, ``ValueError`` quoting the
    encoder's complaint for settings it rejects (``preset="fastest"``). Cached.
    """
    if settings.codec not in available_encoders():
        raise UnknownCodecError(settings.codec)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"]
    cmd += ["-f", "lavfi", "-i", "color=size=64x64", "-frames:v", "1"]
    cmd += [*settings.args(), "-f", "null", "-"]
    trial = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
    if trial.returncode != 0:
        reason = next(iter(trial.stderr.strip().splitlines()), "no error output")
        raise ValueError(
            f"{settings.codec} rejects crf={settings.crf} preset={settings.preset}: {reason}"
        )


def output_size(width: int, height: int, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(width, height)`` of the video: ``size`` or the input's, rounded up to even.

    >>> output_size(63, 48), output_size(64, 48, (321, 240))
    ((64, 48), (322, 240))
    """
    width, height = size or (width, height)
    return width + width % 2, height + height % 2


def _video_filter(
    width: int, height: int, size: tuple[int, int] | None, fit: str = "pad"
) -> list[str]:
    """ffmpeg's ``-vf`` for ``width x height`` frames into a video of ``size``, ``fit`` to it.

    >>> _video_filter(64, 48, (32, 32), "pad")[1]
    'scale=32:32:force_original_aspect_ratio=decrease:force_divisible_by=2,pad=32:32:-1:-1'
    """
    out_w, out_h = output_size(width, height, size)
    if (out_w, out_h) == (width, height):
        return []
    if size is None:  # odd input: pad with black rather than resample
        return ["-vf", f"pad={out_w}:{out_h}"]
    if fit == "stretch" or width * out_h == height * out_w:
        return ["-vf", f"scale={out_w}:{out_h}"]
    if fit == "crop":
        return ["-vf", f"scale={out_w}:{out_h}:force_original_aspect_ratio=increase,"
                       f"crop={out_w}:{out_h}"]  # fmt: skip
    return ["-vf", f"scale={out_w}:{out_h}:force_original_aspect_ratio=decrease:"
                   f"force_divisible_by=2,pad={out_w}:{out_h}:-1:-1"]  # fmt: skip


def ffmpeg_command(
    path: str | Path,
    width: int,
    height: int,
    *,
    fps: float,
    encoder: EncoderSettings = EncoderSettings(),
    size: tuple[int, int] | None = None,
    fit: str = "pad",
) -> list[str]:
    """The ffmpeg argv that encodes rgb24 ``width x height`` frames from stdin to ``path``.

    In reading order: input side, filters, output side, path. ``size`` resizes in ffmpeg,
    ``fit`` (:data:`FITS`) says how when the aspect ratio differs.
    """
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "warning", "-y"]
    # input: raw frames on stdin
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    cmd += ["-r", repr(float(fps)), "-i", "-"]
    cmd += _video_filter(width, height, size, fit)
    cmd += ["-an", *encoder.args()]
    # index first, so a browser starts playing before the whole file has arrived
    cmd += ["-movflags", "+faststart", "-f", "mp4", str(path)]
    return cmd


def start_ffmpeg(cmd: list[str]) -> subprocess.Popen:
    """Start ffmpeg reading frames from a pipe: its own session, stderr piped, 1 MiB pipe.

    Its own session: Ctrl-C reaches only Python, which decides how ffmpeg ends. The larger
    pipe (Linux) means fewer switches between writer and ffmpeg: measured 4% less CPU for
    480x480 frames than the default 64 KiB.
    """
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return proc


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete.

    ``OUT/.render/partial/<stem>.<uuid4hex>.partial.mp4``: on the same file system as the
    final path (so the rename is atomic) but hidden from ``ls OUT``, so a killed render's
    leftovers never count as videos (the seed's ``ls OUT | grep behavior_video | wc -l``).
    """
    folder = _partial_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{path.stem}.{uuid.uuid4().hex}.partial.mp4"


def remove_stale_partials(path: Path) -> None:
    """Delete partial files a killed earlier render left for ``path``."""
    for stale in _partial_dir(path).glob(f"{path.stem}.*.partial.mp4"):
        stale.unlink(missing_ok=True)


def _partial_dir(path: Path) -> Path:
    # Files already in the hidden folder (segments) keep their partials beside them.
    return path.parent if WORK_DIR in path.parent.parts else path.parent / WORK_DIR / "partial"


def check_frame_count(written: Path, expected: int, name: str, command: list[str]) -> None:
    """:class:`EncodeError` unless the MP4 index of ``written`` holds ``expected`` frames."""
    try:
        count: int | str = mp4.count_frames(written)
    except (OSError, mp4.Mp4Error) as e:
        count = f"an unreadable index ({e})"
    if count != expected:
        raise EncodeError(
            f"{name}: the encoded file has {count} frames, "
            f"expected {expected}; command: {shlex.join(command)}"
        )


def run_ffmpeg(args: list[str], name: str) -> None:
    """Run ``ffmpeg ARGS`` to completion (no frames piped in); EncodeError with its last lines.

    ``name`` says which video the error is about.
    """
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "warning", "-nostdin"]
    cmd += ["-y", *args]
    log.debug("running %s", shlex.join(cmd))
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, start_new_session=True, timeout=FINISH_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise EncodeError(
            f"{name}: ffmpeg did not finish within {FINISH_TIMEOUT:g} s; command: {shlex.join(cmd)}"
        ) from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()[-STDERR_LINES:]
        raise EncodeError(
            f"{name}: ffmpeg failed (exit status {done.returncode}):\n"
            f"{chr(10).join(lines) or '(no output)'}\ncommand: {shlex.join(cmd)}"
        )


class _StderrTail:
    """Drains a pipe in a daemon thread (so ffmpeg never blocks); keeps the last lines."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._thread = threading.Thread(
            target=self._drain, args=(pipe,), name="ffmpeg-stderr", daemon=True
        )
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            for line in pipe:
                self._lines.append(line.decode(errors="replace").rstrip())

    def text(self) -> str:
        """The kept lines, once the pipe is closed (ffmpeg has exited)."""
        self._thread.join(timeout=5)
        return "\n".join(self._lines)


class VideoEncoder:
    """Write ``uint8 (T, height, width, 3)`` blocks of frames to one video through ffmpeg.

    Args:
        path: the final ``.mp4`` path; nothing exists there until :meth:`close` succeeds.
        width, height: size of the frames given to :meth:`write`.
        fps, encoder, size, fit: see :func:`ffmpeg_command`.

    Use as a context manager: leaving the block normally calls :meth:`close` (finish, check,
    rename); an exception calls :meth:`abort` (kill ffmpeg, remove the partial file).
    """

    path: Path
    frames: int
    closed: bool

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        *,
        fps: float,
        encoder: EncoderSettings = EncoderSettings(),
        size: tuple[int, int] | None = None,
        fit: str = "pad",
    ) -> None:
        self.closed = True  # until ffmpeg runs
        self.path = Path(path)
        self.frames = 0
        self._shape = (height, width, 3)
        remove_stale_partials(self.path)
        self._partial = partial_path(self.path)
        self.command = ffmpeg_command(
            self._partial, width, height, fps=fps, encoder=encoder, size=size, fit=fit
        )
        log.debug("starting %s", shlex.join(self.command))
        self._proc = start_ffmpeg(self.command)
        self._stderr = _StderrTail(self._proc.stderr)
        self.closed = False

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"VideoEncoder({str(self.path)!r}, frames={self.frames}, {state})"

    def write(self, frames: np.ndarray) -> None:
        """Send a block of frames to ffmpeg (blocks while ffmpeg's pipe is full)."""
        if self.closed:
            raise RuntimeError("VideoEncoder is closed")
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != self._shape:
            raise ValueError(
                f"frames must be uint8 (T, {', '.join(map(str, self._shape))}). "
                f"Got {frames.dtype} {frames.shape} instead."
            )
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frames)).cast("B"))
        except OSError:  # BrokenPipeError: ffmpeg exited early, and its stderr says why
            self._proc.wait()
            error = EncodeError(self._failure("ffmpeg stopped reading frames"))
            self.abort()
            raise error from None
        self.frames += len(frames)

    def close(self) -> Path:
        """Finish the video, check ffmpeg's status and the frame count, rename; the path."""
        if self.closed:
            raise RuntimeError("VideoEncoder is closed")
        try:
            self._finish()
            check_frame_count(self._partial, self.frames, self.path.name, self.command)
            self._partial.replace(self.path)
        except BaseException:
            self.abort()
            raise
        self.closed = True
        log.debug("wrote %s (%d frames)", self.path, self.frames)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg at once and remove the partial file; the final path is not touched."""
        self.closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._close_stdin()
        self._proc.wait()
        self._partial.unlink(missing_ok=True)

    def __del__(self) -> None:
        # getattr: __init__ may have failed before ffmpeg started
        if getattr(self, "closed", True) or getattr(self, "_proc", None) is None:
            return
        log.warning("VideoEncoder for %s was not closed; discarding the partial video", self.path)
        self.abort()

    def _finish(self) -> None:
        self._close_stdin()
        try:
            self._proc.wait(timeout=FINISH_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            message = f"ffmpeg did not finish within {FINISH_TIMEOUT:g} s"
            raise EncodeError(self._failure(message)) from None
        if self._proc.returncode != 0:
            raise EncodeError(self._failure("ffmpeg failed"))

    def _close_stdin(self) -> None:
        # BrokenPipeError flushing the last bytes means ffmpeg is gone already
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def _failure(self, what: str) -> str:
        """The error message: what failed, ffmpeg's exit status, its last lines, the command."""
        lines = self._stderr.text().strip().splitlines()[-STDERR_LINES:]
        return (
            f"{self.path.name}: {what} (exit status {self._proc.returncode}):\n"
            f"{chr(10).join(lines) or '(no output)'}\ncommand: {shlex.join(self.command)}"
        )
