"""The reliability suite: every test here is marked ``reliability`` and reports what it saw.

* The ``reliability`` marker (declared in ``pyproject.toml``) is added to every test of this
  folder, so ``pytest -m reliability`` runs the suite alone and ``-m "not reliability"``
  leaves it out.
* ``observe(part, case, observed, **figures)`` records one case for ``docs/reliability.md``.
* When a session ran this suite alone and whole (every module, nothing deselected, no other
  tests), ``docs/reliability.md`` is rewritten from the observations at the end (``report.py``).
* ``RELIABILITY_TRIALS`` (default 20) sets the number of SIGKILL trials; more for a long run.
* ``RELIABILITY_DOC=path`` writes the page to ``path`` after any run, even a partial one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from report import DOC, Observation, markdown, outcome_of

HERE = Path(__file__).resolve().parent
KILL_TRIALS = int(os.environ.get("RELIABILITY_TRIALS", "20"))

_observations: list[Observation] = []
_run = {"full": False, "started": time.monotonic()}


def _ours(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).resolve().parent == HERE


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests before ``-m`` selects, and note what a full run looks like."""
    for item in items:
        if _ours(item):
            item.add_marker(pytest.mark.reliability)
    _run["collected"] = sum(_ours(item) for item in items)
    _run["modules"] = {Path(str(item.fspath)).name for item in items if _ours(item)}


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """The page is rewritten only by a run of this suite alone and whole (``pytest -m
    reliability`` or ``pytest tests/reliability``), not by every run of the whole test suite
    (which would leave the shared checkout's page modified after each)."""
    selected = sum(_ours(item) for item in session.items)
    every_module = {p.name for p in HERE.glob("test_*.py")} == _run.get("modules", set())
    alone_and_whole = selected == _run.get("collected") == len(session.items)
    _run["full"] = every_module and alone_and_whole and not session.config.option.collectonly
    _run["started"] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Stamp the observations of a test with its outcome (failures in setup included)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        for observation in _observations:
            if observation.nodeid == item.nodeid:
                observation.outcome = outcome_of(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    forced = os.environ.get("RELIABILITY_DOC")  # any run, written elsewhere (for a look)
    if (_run["full"] or forced) and _observations:
        seconds = time.monotonic() - _run["started"]
        Path(forced or DOC).write_text(markdown(_observations, seconds))


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``observe(part, case, observed, **figures)``: record one case of this test."""

    def record(part: int, case: str, observed: str, **figures: object) -> None:
        _observations.append(Observation(part, case, observed, request.node.nodeid, figures))

    return record
