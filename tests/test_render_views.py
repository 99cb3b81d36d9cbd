"""What users look at: overlays, one video per episode, the mosaic (real stores, real ffmpeg)."""

from __future__ import annotations

import numpy as np
import pytest
from test_render_helpers import CAMERAS, decode, psnr, write_episode_store, write_store

from collect import FrameWriter, open_store
from render import RenderOptions, render_store
from render.cli import main
from render.episodes import outcome_rule, read_episodes
from render.mp4 import count_frames
from render.overlay import FONT_FRACTION, MIN_FONT, Overlay, field_text, font

HEAD = {"zed": (128, 128)}  # one 128x128 camera: the small case the overlay must read at


# ----------------------------------------------------------------------------- overlay


@pytest.fixture(scope="module")
def episode_store(tmp_path_factory):
    """env0: terminated after 12 rows, then 18 rows cut off; env1: truncated at 20, then 10."""
    path = tmp_path_factory.mktemp("episodes") / "s.zarr"
    return write_episode_store(
        path, [[(12, "terminated"), (18, None)], [(20, "truncated"), (10, None)]], cameras=HEAD
    )


def test_overlay_changes_the_bands_and_leaves_the_scene_centre(episode_store, tmp_path):
    raw = render_store(episode_store, tmp_path / "raw", groups="*env0", crf=18)
    drawn = render_store(episode_store, tmp_path / "drawn", groups="*env0", crf=18, overlay=True)
    plain, text = decode(raw.outputs[0]), decode(drawn.outputs[0])
    stored = open_store(episode_store).group("rank0_gpu0_env0").frames("zed")
    assert text.shape == plain.shape == stored.shape == (30, 128, 128, 3)

    centre = np.s_[:, 32:96, 32:96]
    assert psnr(text[centre], stored[centre]) >= 38  # the scene is left as it was
    assert psnr(text[centre], plain[centre]) >= 38
    for band in (np.s_[:, :14, 20:108], np.s_[:, -14:, 20:108]):  # top and bottom bands
        difference = np.abs(text[band].astype(int) - stored[band].astype(int)).mean()
        assert difference > 25, "the overlay bands are shaded and written on"
    # the text follows the rows: the step number changes the top band from frame to frame
    assert np.abs(text[5, :14].astype(int) - text[6, :14].astype(int)).max() > 60


def test_overlay_border_marks_the_end_of_a_finished_episode(episode_store, tmp_path):
    report = render_store(episode_store, tmp_path, crf=18, overlay=True)
    success, failure = (decode(p) for p in report.outputs)  # env0 terminated, env1 truncated
    # from the row the outcome is known on (the last, here); none for the cut-off episode
    assert_colour(left_edge(success[11:12]), (40, 200, 40))
    assert_colour(left_edge(failure[19:20]), (220, 40, 40))
    for video, known in ((success, 11), (failure, 19)):
        for row in (0, known - 1, known + 1, len(video) - 1):
            frame = video[row : row + 1]
            assert not is_colour(left_edge(frame), (40, 200, 40))
            assert not is_colour(left_edge(frame), (220, 40, 40))


def left_edge(frames: np.ndarray) -> np.ndarray:
    """Pixels inside the border's width on the left edge, away from the text bands."""
    return frames[:, 40:90, 1]


def assert_colour(pixels: np.ndarray, rgb: tuple[int, int, int]) -> None:
    assert is_colour(pixels, rgb), pixels.reshape(-1, 3).mean(axis=0)


def is_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 30) -> bool:
    return bool(np.abs(pixels.reshape(-1, 3).mean(axis=0) - rgb).max() < tolerance)


@pytest.mark.parametrize("size", [128, 960])
def test_overlay_text_scales_with_the_frame_and_fits(size):
    values = {
        "episode": np.array([12]),
        "step": np.array([1499]),
        "reward": np.array([-0.125]),
        "return": np.array([-187.5]),
        "result": np.array(["FAILURE"], dtype=object),
        "end": np.array(["TRUNCATED"], dtype=object),
        "outcome": np.array([2]),
        "info/success": np.array(["no"], dtype=object),
    }
    overlay = Overlay.build(values, first_row=0, height=size, width=size)
    assert overlay.font_size == max(MIN_FONT, round(size * FONT_FRACTION))  # 9 px, 44 px
    face = font(overlay.font_size)
    for line in overlay.lines:  # every line fits in the frame (long fields wrap)
        texts = [field_text(name, values[name][0]) for name in line]
        assert face.getlength("  ".join(texts)) < size
    # the bands stay in the outer quarters: the middle half of the frame is the scene's
    assert all(band.top >= 0.75 * size or band.bottom <= 0.25 * size for band in overlay.bands)
    assert len(overlay.lines) == 2 if size == 960 else len(overlay.lines) <= 5


def test_overlay_keys_must_be_stored(episode_store, tmp_path, capsys):
    code = main(
        [str(episode_store), str(tmp_path), "--overlay", "--overlay-keys", "success,gripper"]
    )
    assert code == 1
    assert "has no info key 'gripper'; it has success" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"^overlay_keys needs overlay$"):
        RenderOptions(overlay_keys=["success"])


def test_overlay_is_part_of_the_fingerprint(episode_store, tmp_path):
    render_store(episode_store, tmp_path, groups="*env1")
    again = render_store(episode_store, tmp_path, groups="*env1", overlay=True)
    assert [r.status for r in again.results] == ["rendered"]


# ----------------------------------------------------------------------------- episodes


def test_success_comes_from_the_info_key_when_stored(tmp_path):
    """Terminated without success is a failure; without the key, termination says nothing
    (the outcome is unknown) unless the env's rule says what it means."""
    path = tmp_path / "s.zarr"
    with FrameWriter(path, num_envs=2, fps=10) as writer:
        for t in range(6):
            done = [t == 2, t == 2]
            writer.append(
                np.zeros((2, 8, 8, 3), np.uint8),
                reward=[1.0, 0.0],
                terminated=done,
                info={"episode": {"success_once": [t == 4, False]}},
            )
    groups = open_store(path).groups()
    outcomes = [[(e.end, e.outcome) for e in read_episodes(g)] for g in groups]
    assert outcomes == [
        [("terminated", "failure"), ("partial", "success")],  # the key decides, even mid-episode
        [("terminated", "failure"), ("partial", "unknown")],
    ]
    no_key = tmp_path / "n.zarr"
    write_episode_store(no_key, [[(3, "terminated"), (2, "truncated")]], success=False)
    (group,) = open_store(no_key).groups()
    assert [e.outcome for e in read_episodes(group)] == ["unknown", "unknown"]
    rule = outcome_rule(group, env_type="mujoco_tabletop")  # declares terminated = success
    assert [e.outcome for e in read_episodes(group, rule)] == ["success", "failure"]


def test_split_episodes_writes_each_stored_episode(tmp_path, capsys):
    store = write_episode_store(
        tmp_path / "s.zarr",
        [[(7, "terminated"), (9, "truncated"), (6, None)], [(10, "truncated"), (12, "terminated")]],
    )
    assert main([str(store), str(tmp_path / "out"), "--split-episodes"]) == 0
    summary = capsys.readouterr().out
    lengths = {}
    for group in open_store(store).groups():
        for episode, start, stop in group.episodes():
            name = f"behavior_video_rank0_gpu0_env{group.env}_episode{episode}.mp4"
            lengths[name] = stop - start
            video = decode(tmp_path / "out" / name)
            assert count_frames(tmp_path / "out" / name) == len(video) == stop - start
            (canvas,) = RenderOptions().get_layout().canvases(group.cameras)
            stored = canvas.compose({c: group.frames(c, start, stop) for c in group.cameras})
            assert psnr(video, stored) >= 35, name
    assert lengths == {
        "behavior_video_rank0_gpu0_env0_episode0.mp4": 7,
        "behavior_video_rank0_gpu0_env0_episode1.mp4": 9,
        "behavior_video_rank0_gpu0_env0_episode2.mp4": 6,
        "behavior_video_rank0_gpu0_env1_episode0.mp4": 10,
        "behavior_video_rank0_gpu0_env1_episode1.mp4": 12,
    }
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == sorted(lengths)
    rows = {line.split()[0]: line for line in summary.splitlines()[2:-1]}
    assert "1 (partial)" in rows["behavior_video_rank0_gpu0_env0_episode2.mp4"]
    assert "partial" not in rows["behavior_video_rank0_gpu0_env1_episode1.mp4"]
    assert "1/1" in rows["behavior_video_rank0_gpu0_env1_episode1.mp4"]  # terminated: success
    whole = render_store(store, tmp_path / "whole")  # without splitting: one video per env
    assert [(r.frames, len(r.episodes)) for r in whole.results] == [(22, 3), (22, 2)]
    assert "3, last partial" in whole.summary()


# ----------------------------------------------------------------------------- mosaic


def test_mosaic_tiles_every_env_and_holds_the_ones_that_ended(tmp_path):
    store = tmp_path / "s.zarr"
    write_store(store, envs=2, rows=20)  # rank 0: two envs of 20 rows
    with FrameWriter(store, rank=1, gpu=2, num_envs=1, fps=10) as writer:  # rank 1: 32 rows
        for t in range(32):
            writer.append(
                {c: np.full((1, h, w, 3), 8 * t, np.uint8) for c, (h, w) in CAMERAS.items()}
            )
    report = render_store(store, tmp_path / "out", mosaic=True)
    assert report.ok, report.summary()
    names = [p.name for p in report.outputs]
    assert names == [
        "behavior_video_rank0_gpu1_env0.mp4",
        "behavior_video_rank0_gpu1_env1.mp4",
        "behavior_video_rank1_gpu2_env0.mp4",
        "behavior_video_mosaic.mp4",
    ]  # in addition to the per-env videos
    mosaic = decode(report.outputs[-1])
    assert len(mosaic) == count_frames(report.outputs[-1]) == 32  # the longest group
    height, width = mosaic.shape[1:3]
    cell = (height - 2) // 2, (width - 2) // 2  # 2x2 grid, 2-pixel gaps
    first = np.s_[:, cell[0] // 2 :, :]  # below the label
    rank0_env0 = mosaic[first][:, : cell[0] // 2, : cell[1]]
    rank1 = mosaic[:, cell[0] + 2 + cell[0] // 2 :, : cell[1]]
    assert psnr(rank0_env0[20:], np.repeat(rank0_env0[19:20], 12, axis=0)) >= 40  # held
    assert psnr(rank0_env0[5:6], rank0_env0[15:16]) < 30  # moving before
    assert rank1[31].mean() > rank1[20].mean() + 40  # rank 1 goes on brightening
    assert mosaic[:, -cell[0] // 2 :, -cell[1] // 2 :].max() < 20  # the 4th cell is empty
    again = render_store(store, tmp_path / "out", mosaic=True)
    assert {r.status for r in again.results} == {"up to date"}


def test_mosaic_cells_get_the_overlay_of_their_per_env_video(episode_store, tmp_path):
    plain = render_store(episode_store, tmp_path / "plain", mosaic=True, crf=18)
    drawn = render_store(episode_store, tmp_path / "drawn", mosaic=True, crf=18, overlay=True)
    assert plain.ok and drawn.ok, drawn.summary()
    without, mosaic = decode(plain.outputs[-1]), decode(drawn.outputs[-1])
    assert mosaic.shape == without.shape == (30, 128, 2 * 128 + 2, 3)  # two 128x128 cells
    for i, per_env in enumerate(decode(p) for p in drawn.outputs[:-1]):
        cell = np.s_[:, :, i * 130 : i * 130 + 128]
        tile, bare = mosaic[cell], without[cell]
        # the bands (the top one up to where the moved label starts) are the per-env video's
        for band in (np.s_[:, :14], np.s_[:, -14:]):
            assert psnr(tile[band], per_env[band]) >= 35
            assert np.abs(tile[band].astype(int) - bare[band].astype(int)).mean() > 25
        centre = np.s_[:, 55:100, 32:96]  # below the label, above the bottom band
        assert psnr(tile[centre], bare[centre]) >= 38  # the scene is left as it was
        assert psnr(tile[centre], per_env[centre]) >= 38
        label = np.s_[:, 32:44, 4:40]  # moved from the top-left corner to below the top band
        assert np.abs(tile[label].astype(int) - per_env[label].astype(int)).mean() > 25
    # the outcome border: env0's success on its last row (11), env1's failure on row 19
    assert_colour(left_edge(mosaic[11:12]), (40, 200, 40))
    assert_colour(left_edge(mosaic[19:20, :, 130:]), (220, 40, 40))
    assert not is_colour(left_edge(mosaic[10:11]), (40, 200, 40))
    assert not is_colour(left_edge(without[11:12]), (40, 200, 40))
