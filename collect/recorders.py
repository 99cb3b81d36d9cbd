"""What an env worker does with each step's observations, chosen from an RLinf ``video_cfg``.

* ``save_frames: true`` -> :class:`collect.FrameWriter` into the frame store (evalframes);
* ``save_video: true`` alone -> :class:`InlineVideos`, the seed's per-env inline encoding (one
  imageio-ffmpeg writer per env of the worker, on the rollout thread), kept as the baseline;
* neither -> :class:`NoRecording`.

RLinf env workers can use :func:`recorder_from_video_cfg` directly with their ``video_cfg`` and
worker info:

>>> import tempfile, numpy as np
>>> cfg = {"save_frames": True, "save_video": False, "fps": 10,
...        "video_base_dir": tempfile.mkdtemp()}
>>> recorder = recorder_from_video_cfg(cfg, rank=1, accelerator_id=3, num_envs=2)
>>> recorder.append({"zed": np.zeros((2, 8, 8, 3), np.uint8)}, reward=[0.0, 1.0])
>>> recorder.close()
>>> from collect import open_store
>>> open_store(cfg["video_base_dir"] + "/frames.zarr").group_names()
['rank1_gpu3_env0', 'rank1_gpu3_env1']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import adapters
from .store import DEFAULT_VIDEO_PREFIX, group_name
from .writer import FrameWriter

__all__ = ["InlineVideos", "NoRecording", "Recorder", "recorder_from_video_cfg"]

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """Receives every step of one env worker (:class:`FrameWriter` is one); a context manager
    that closes it (``with recorder:``; FrameWriter records how the block ended)."""

    def __enter__(self) -> Recorder: ...

    def __exit__(self, *exc: object) -> None: ...

    def append(
        self,
        obs: Any,
        reward: Any = None,
        terminated: Any = None,
        truncated: Any = None,
        info: Any = None,
    ) -> None: ...

    def close(self) -> None: ...


class _Closing:
    """``with recorder:`` closes it, however the block ends."""

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class NoRecording(_Closing):
    """Records nothing (``save_frames`` and ``save_video`` both off)."""

    def append(self, obs: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class InlineVideos(_Closing):
    """The seed's behaviour: one libx264 writer per env, encoding on the calling thread.

    Each env's cameras are placed side by side (padded to the tallest) in one video,
    ``{video_prefix}_rank{r}_gpu{g}_env{e}.mp4``. This is the baseline evalframes replaces:
    encoding competes with the simulator, and a killed worker leaves unplayable MP4s.
    """

    def __init__(
        self,
        out_dir: str | Path,
        rank: int,
        gpu: int,
        num_envs: int,
        *,
        fps: float = 30.0,
        video_prefix: str = DEFAULT_VIDEO_PREFIX,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rank, self.gpu, self.num_envs, self.fps = rank, gpu, num_envs, fps
        self.video_prefix = video_prefix
        self._writers: list[Any] = []

    def _open(self, width: int, height: int) -> None:
        import imageio_ffmpeg

        for env in range(self.num_envs):
            name = f"{self.video_prefix}_{group_name(self.rank, self.gpu, env)}.mp4"
            writer = imageio_ffmpeg.write_frames(
                str(self.out_dir / name),
                (width, height),
                fps=self.fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=2,
                ffmpeg_log_level="error",
            )
            writer.send(None)
            self._writers.append(writer)

    def append(self, obs: Any, *args: Any, **kwargs: Any) -> None:
        batches = adapters.batches_to_numpy(adapters.to_camera_batches(obs, self.num_envs))
        tiles = side_by_side(list(batches.values()))
        if not self._writers:
            self._open(tiles.shape[2], tiles.shape[1])
        for env, writer in enumerate(self._writers):
            writer.send(np.ascontiguousarray(tiles[env]))

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers = []


def side_by_side(batches: list[np.ndarray]) -> np.ndarray:
    """``(N, H, sum(W), 3)``: camera batches next to each other, bottom-padded to one height."""
    height = max(b.shape[1] for b in batches)
    padded = [np.pad(b, ((0, 0), (0, height - b.shape[1]), (0, 0), (0, 0))) for b in batches]
    return np.concatenate(padded, axis=2)


def writer_cpus(
    video_cfg: Mapping[str, Any], key: str = "video_cfg.writer_cpus"
) -> list[int] | None:
    """``video_cfg.writer_cpus`` (``1``, ``"2-3"``, ``"0,2"``) as CPU ids; ``None`` if unset.

    >>> writer_cpus({"writer_cpus": "0-1"}), writer_cpus({})
    ([0, 1], None)
    """
    from .eval.placement import parse_placement

    spec = video_cfg.get("writer_cpus")
    if spec is None:
        return None
    return parse_placement(spec, os.cpu_count(), key=key)


def recorder_from_video_cfg(
    video_cfg: Mapping[str, Any],
    *,
    rank: int,
    accelerator_id: int,
    num_envs: int,
    first_global_env: int | None = None,
    config: Mapping[str, Any] | None = None,
    first_env: int = 0,
    num_envs_in_worker: int | None = None,
) -> Recorder:
    """The recorder an RLinf env worker should use for its ``env.eval.video_cfg``
    (``first_env``, ``num_envs_in_worker``: see :class:`FrameWriter`)."""
    save_frames = bool(video_cfg.get("save_frames", False))
    save_video = bool(video_cfg.get("save_video", False))
    fps = float(video_cfg.get("fps", 30))
    prefix = str(video_cfg.get("video_prefix", DEFAULT_VIDEO_PREFIX))
    base_dir = Path(str(video_cfg.get("video_base_dir", "logs/eval/video")))
    if save_frames:
        return FrameWriter(
            video_cfg.get("frames_path") or base_dir / "frames.zarr",
            rank=rank,
            gpu=accelerator_id,
            num_envs=num_envs,
            fps=fps,
            codec=video_cfg.get("codec", "zstd"),
            chunk_frames=video_cfg.get("chunk_frames"),
            flush_interval=float(video_cfg.get("flush_interval", 2.0)),
            max_buffer_mb=float(video_cfg.get("max_buffer_mb", 512)),
            priority=str(video_cfg.get("writer_priority", "idle")),
            cpus=writer_cpus(video_cfg),
            defer_mb=float(video_cfg.get("defer_mb", 2048)),
            first_env=first_env,
            num_envs_in_worker=num_envs_in_worker,
            global_env_offset=first_global_env,
            video_prefix=prefix,
            config=config,
            overwrite=bool(video_cfg.get("overwrite", False)),
        )
    if save_video:
        return InlineVideos(base_dir, rank, accelerator_id, num_envs, fps=fps, video_prefix=prefix)
    return NoRecording()
