"""FrameWriter inside a real Ray actor (RLinf's env workers are Ray actors).

A local Ray instance runs one actor that records pattern frames. Closed normally, every row is
stored; killed with ``ray.kill`` mid-rollout (what a failed RLinf job does to its workers), the
writer process outlives the actor, commits every row whose ``append`` had returned and marks
the groups ``interrupted``.
"""

from __future__ import annotations

import os

import pytest
from framegen import assert_group_matches, pattern_batch, wait_until_finished

from collect import open_store

ray = pytest.importorskip("ray")
TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": TESTS}},
    )
    yield
    ray.shutdown()


@ray.remote
class EnvWorker:
    """An env worker that records ``pattern_batch`` frames, as an RLinf env worker would."""

    def __init__(self, store: str, rank: int) -> None:
        from collect import FrameWriter

        self.rank = rank
        self.writer = FrameWriter(store, rank=rank, gpu=rank, num_envs=2, chunk_frames=8)
        self.rows = 0

    def step(self, count: int) -> int:
        """Append ``count`` rows; the rows appended so far."""
        for _ in range(count):
            self.writer.append(pattern_batch(self.rank, 2, self.rows))
            self.rows += 1
        return self.rows

    def close(self) -> int:
        self.writer.close()
        return self.rows


def test_a_ray_actor_records_and_closes(local_ray, tmp_path):
    store = str(tmp_path / "frames.zarr")
    worker = EnvWorker.remote(store, 0)
    ray.get(worker.step.remote(21))
    assert ray.get(worker.close.remote()) == 21
    for group in open_store(store).groups():
        assert group.rows == 21 and group.status == "complete"
        assert_group_matches(group, rank=0, env=group.env)


def test_ray_kill_of_the_actor_loses_no_appended_row(local_ray, tmp_path):
    store = str(tmp_path / "frames.zarr")
    worker = EnvWorker.remote(store, 1)
    appended = ray.get(worker.step.remote(13))  # 13 rows: one chunk of 8 and 5 more
    ray.kill(worker)
    names = ["rank1_gpu1_env0", "rank1_gpu1_env1"]
    wait_until_finished(store, names)
    for group in open_store(store).groups():
        assert group.rows == appended and group.status == "interrupted"
        assert_group_matches(group, rank=1, env=group.env)
