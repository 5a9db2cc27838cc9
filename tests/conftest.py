"""Shared fixtures: the real PTB wherever the main job finds it, and small corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests run in two worker processes (pyproject's addopts): on an accelerator, each takes
# the memory it needs rather than JAX's default 75% of the device.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from tests.helpers import REPO
from w2v_jax import data
from w2v_jax.data.corpus import CACHE_ENV_VAR

# Set by CI: a test that needs the real PTB fails rather than skips when it is missing.
REQUIRE_PTB_ENV_VAR = "W2V_JAX_REQUIRE_PTB"
PTB_SKIP_REASON = "the real PTB (ptb.zip) was not found"


def ptb_directory() -> Path | None:
    """Where ptb.zip is: where the main job looks ($W2V_JAX_DATA, else the user cache), and,
    when $W2V_JAX_DATA is not set, the checkout's ../shared/data."""
    candidates = [data.ptb.resolve_data_dir()]
    if not os.environ.get(data.ptb.DATA_ENV_VAR):
        candidates.append(REPO.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "ptb.zip").exists():
            return candidate
    return None


@pytest.fixture(autouse=True, scope="session")
def corpus_cache(tmp_path_factory) -> Path:
    """Encoded corpora go to a temporary cache, never to the user's."""
    directory = tmp_path_factory.mktemp("corpus_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV_VAR, str(directory))
        yield directory


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    directory = ptb_directory()
    if directory is None:
        if os.environ.get(REQUIRE_PTB_ENV_VAR):
            pytest.fail(f"{PTB_SKIP_REASON} and ${REQUIRE_PTB_ENV_VAR} is set")
        pytest.skip(PTB_SKIP_REASON)
    return directory


def pytest_terminal_summary(terminalreporter) -> None:
    """Say in one visible line when tests on the real PTB were skipped, and how to run them."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if PTB_SKIP_REASON in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests on the real PTB skipped: put ptb.zip in "
            f"{data.ptb.resolve_data_dir()} or set {data.ptb.DATA_ENV_VAR} to its directory",
            yellow=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def ptb_zip_bytes(ptb_dir: Path) -> bytes:
    return (ptb_dir / "ptb.zip").read_bytes()


@pytest.fixture(scope="session")
def ptb_text(ptb_dir: Path) -> str:
    return data.ptb.read_ptb(ptb_dir)


@pytest.fixture(scope="session")
def ptb_run(ptb_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    """One epoch of the main job on PTB: its workdir (metrics, checkpoints) and metrics."""
    from experiments import ptb_skipgram

    workdir = tmp_path_factory.mktemp("ptb_run")
    metrics = ptb_skipgram.main(
        [
            "--num-epochs",
            "1",
            "--workdir",
            str(workdir),
            "--data-dir",
            str(ptb_dir),
            "--no-progress",
        ]
    )
    return workdir, metrics
