"""The HTML gallery: written offline, and opened in headless Chromium (Debian's ``chromium``).

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in NUL on file descriptors 3 and 4), so no websocket library, driver or
network port is needed: open ``file://.../index.html``, wait until every ``<video>`` has
loaded its metadata, read the durations, use the filter, take a screenshot; open it again with
a filter in the URL and read the run summary and the env sections off the page.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image
from test_render_helpers import write_episode_store

from render import render_store
from render.gallery import POSTER_DIR, Card, render_page

FPS = 10
CAMERAS = {"zed": (96, 128), "left_realsense": (48, 48), "right_realsense": (48, 48)}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = (1280, 1000)
RUN_CONFIG = {"env": {"env_type": "synthetic_demo", "num_envs": 2}, "seed": 7}


class Chromium:
    """Headless Chromium and one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, profile: Path, timeout: float = 60) -> None:
        executable = shutil.which("chromium")
        if executable is None:
            pytest.fail("chromium is not installed; apt-get install chromium (.ci/run does)")
        self.timeout = timeout
        self._id = 0
        self._buffer = b""
        commands, self._replies = os.pipe(), os.pipe()
        # the browser reads commands from fd 3 and writes replies to fd 4
        ends = (
            fcntl.fcntl(commands[0], fcntl.F_DUPFD, 10),
            fcntl.fcntl(self._replies[1], fcntl.F_DUPFD, 10),
        )

        def as_fds_3_and_4() -> None:
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            pass_fds=(3, 4),
            preexec_fn=as_fds_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for fd in (commands[0], self._replies[1], *ends):
            os.close(fd)
        self._commands = os.fdopen(commands[1], "wb")
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        width, height = VIEWPORT
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait for its reply (events in between are dropped)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._commands.write(json.dumps(message).encode() + b"\0")
        self._commands.flush()
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    assert "error" not in reply, reply["error"]
                    return reply["result"]
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._replies[0]], [], [], left)[0], method
            chunk = os.read(self._replies[0], 1 << 20)
            assert chunk, "chromium exited"
            self._buffer += chunk

    def page(self, method: str, **params) -> dict:
        """A command to the page."""
        return self.send(method, self.session, **params)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        reply = self.page(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def close(self) -> None:
        """Stop the browser and its helper processes (its own process group)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._commands.close()
        os.close(self._replies[0])


# once the page has loaded, every <video> has its metadata (or failed):
# resolves to [[src, duration or "error"], ...]
VIDEOS_LOADED = """
new Promise(loaded => document.readyState === "complete" ? loaded()
                     : addEventListener("load", () => loaded()))
.then(() => Promise.all([...document.querySelectorAll("video")].map(video =>
  new Promise(done => {
    const report = () => done([video.getAttribute("src"), video.duration]);
    if (video.readyState >= 1) return report();
    video.addEventListener("loadedmetadata", report);
    video.addEventListener("error", () => done([video.getAttribute("src"), "error"]));
  }))))
"""

VISIBLE_CARDS = "[...document.querySelectorAll('#grid .card')].filter(c => !c.hidden).length"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Two envs with episodes, rendered per episode with overlay, mosaic and gallery."""
    root = tmp_path_factory.mktemp("gallery")
    store = write_episode_store(
        root / "frames.zarr",
        [[(12, "terminated"), (10, "truncated"), (8, None)], [(14, "truncated"), (16, None)]],
        cameras=CAMERAS,
        fps=FPS,
    )
    zarr.open_group(str(store), mode="r+").attrs["config"] = RUN_CONFIG
    report = render_store(
        store, root / "videos", overlay=True, split_episodes=True, mosaic=True, gallery=True
    )
    assert report.ok, report.summary()
    return root / "videos", report


def test_gallery_files_link_every_video_and_need_no_network(gallery):
    out, report = gallery
    page = (out / "index.html").read_text()
    assert len(report.outputs) == 6  # 5 episodes and the mosaic
    for video in report.outputs:
        assert f'src="{video.name}"' in page
        assert (out / POSTER_DIR / f"{video.stem}.png").stat().st_size > 0
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert page.count('data-partial="1"') == 2  # the last episode of each env is cut off
    assert page.count('data-verdict="success"') == 1 and page.count('data-verdict="failure"') == 2
    assert "1 (partial)" in page and not list(out.glob("*partial*"))


def test_gallery_opens_offline_in_chromium(gallery, tmp_path):
    out, report = gallery
    expected = {r.path.name: r.frames / FPS for r in report.results}
    browser = Chromium(tmp_path / "profile")
    try:
        browser.page("Page.navigate", url=(out / "index.html").as_uri())
        durations = dict(browser.evaluate(VIDEOS_LOADED))
        assert durations.keys() == expected.keys()
        for name, seconds in durations.items():
            assert seconds == pytest.approx(expected[name], abs=0.05), name
        assert browser.evaluate(VISIBLE_CARDS) == 5  # the mosaic is above the grid
        browser.evaluate("document.getElementById('filter').value = 'failure'")
        browser.evaluate("document.getElementById('filter').dispatchEvent(new Event('change'))")
        assert browser.evaluate(VISIBLE_CARDS) == 2  # the two truncated episodes
        browser.evaluate("document.getElementById('filter').value = 'all'")
        browser.evaluate("document.getElementById('filter').dispatchEvent(new Event('change'))")
        shot = browser.page("Page.captureScreenshot", format="png")["data"]
    finally:
        browser.close()
    screenshot = tmp_path / "gallery.png"
    screenshot.write_bytes(base64.b64decode(shot))
    pixels = np.asarray(Image.open(screenshot).convert("RGB"), np.float64)
    assert pixels.shape[:2] == VIEWPORT[::-1]
    assert pixels.std() > 20, "the screenshot is blank"
    # the posters show: many distinct colours, not just page background and text
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 2000


# the page after a navigation: resolves to its URL once it has loaded
PAGE_LOADED = """
new Promise(loaded => document.readyState === "complete" ? loaded()
                     : addEventListener("load", () => loaded())).then(() => location.href)
"""


def open_page(browser: Chromium, url: str) -> None:
    """Open ``url`` as a new document (from about:blank) and wait until it has loaded."""
    for target in ("about:blank", url):
        browser.page("Page.navigate", url=target)
        deadline = time.monotonic() + browser.timeout
        while browser.evaluate(PAGE_LOADED) != target:  # the old document may answer first
            assert time.monotonic() < deadline, f"{target} did not load"
            time.sleep(0.05)


SUMMARY = """Object.fromEntries([...document.querySelectorAll('#summary dd')]
  .map(dd => [dd.dataset.field, dd.textContent]))"""
# [[group, cards in it, visible cards], ...] for the visible env sections
SECTIONS = """[...document.querySelectorAll('#grid section.env')].filter(s => !s.hidden)
  .map(s => [s.dataset.group, s.querySelectorAll('.card').length,
             [...s.querySelectorAll('.card')].filter(c => !c.hidden).length])"""


def test_gallery_opens_with_the_run_summary_groups_by_env_and_keeps_the_view_in_the_url(
    gallery, tmp_path
):
    out, _ = gallery
    page = (out / "index.html").as_uri()
    canonical = json.dumps(RUN_CONFIG, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    browser = Chromium(tmp_path / "profile")
    try:
        open_page(browser, page)
        summary = browser.evaluate(SUMMARY)
        # env0: success, failure, partial; env1: failure, partial (info/success on termination)
        assert summary["success rate"] == "1/3 (33%), 2 unknown"
        assert summary["envs"] == "2" and summary["episodes"] == "5 (2 partial)"
        assert summary["config"] == f"{digest}, env synthetic_demo"
        assert summary["date"].endswith(" UTC")
        legend = browser.evaluate("document.getElementById('legend').textContent")
        assert all(word in legend for word in ("success", "failure", "unknown", "neutral"))
        assert browser.evaluate(SECTIONS) == [["rank0_gpu0_env0", 3, 3], ["rank0_gpu0_env1", 2, 2]]

        # a filter in the URL is restored when the page is opened
        open_page(browser, f"{page}#filter=success")
        assert browser.evaluate("document.getElementById('filter').value") == "success"
        assert browser.evaluate(VISIBLE_CARDS) == 1
        assert browser.evaluate(SECTIONS) == [["rank0_gpu0_env0", 3, 1]]  # env1 has none

        # choosing a sort writes the view into the URL; opening that URL restores both
        browser.evaluate("document.getElementById('sort').value = 'return-desc'")
        browser.evaluate("document.getElementById('sort').dispatchEvent(new Event('change'))")
        url = browser.evaluate("location.href")
        assert url.endswith("#filter=success&sort=return-desc")
        open_page(browser, url.replace("filter=success", "filter=partial"))
        assert browser.evaluate("document.getElementById('sort').value") == "return-desc"
        assert browser.evaluate(SECTIONS) == [["rank0_gpu0_env0", 3, 1], ["rank0_gpu0_env1", 2, 1]]
    finally:
        browser.close()


def test_gallery_escapes_what_comes_from_the_store():
    card = Card(
        group="rank0_gpu0_env0",
        name='<img src=x onerror="alert(1)">.mp4',
        src="x.mp4",
        poster=None,
        verdict="unknown",
        partial=False,
        mean_return="",
        rate="",
        facts=(("note", "<script>alert(1)</script>"),),
    )
    page = render_page("<b>run</b>", [card], {"config": {"a": "</dd>"}, "overall": {}})
    assert "<img src=x" not in page and "<script>alert" not in page and "<b>run" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-field="success rate">unknown<' in page  # no outcome known
