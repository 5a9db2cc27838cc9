"""Shared fixtures: the real PTB wherever the main job finds it, and small corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from w2v_jax import data
from w2v_jax.data.corpus import CACHE_ENV_VAR

REPO = Path(__file__).resolve().parents[1]
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


def topic_corpus(
    num_topics: int = 6, fillers_per_topic: int = 5, sentences: int = 3000, seed: int = 0
) -> tuple[str, list[tuple[str, str]]]:
    """Sentences about topics: each holds one of its topic's two partner words (a_i or b_i)
    among three of the topic's filler words. Partners never meet but share every context,
    which is what skip-gram turns into similar vectors; fillers co-occur with their partners."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(sentences):
        topic = rng.integers(num_topics)
        partner = f"{'ab'[rng.integers(2)]}{topic}"
        fillers = [f"f{topic}x{j}" for j in rng.choice(fillers_per_topic, 3, replace=False)]
        words = [partner, *fillers]
        rng.shuffle(words)
        lines.append(" " + " ".join(words) + " ")
    return "\n".join(lines) + "\n", [(f"a{t}", f"b{t}") for t in range(num_topics)]


def interrupted_then_resumed(train, workdir: Path, stop_after: int):
    """``train(workdir=..., should_stop=...)`` stopped after ``stop_after`` + 1 dispatches, then
    the same call resumed from its checkpoint: what the resumed call returns."""
    from w2v_jax.run import TrainingInterrupted

    asked = iter(range(1_000_000))
    with pytest.raises(TrainingInterrupted):
        train(workdir=workdir, should_stop=lambda: next(asked) == stop_after)
    return train(workdir=workdir, should_stop=None)


def text_corpus(text: str):
    """A corpus of ``text`` (one sentence a line) as run.train reads any corpus: a file,
    written once under the temporary directory, named by the text's digest."""
    import hashlib
    import tempfile

    from w2v_jax.config import CorpusConfig

    directory = Path(tempfile.gettempdir()) / "w2v_jax_test_corpora"
    path = directory / f"{hashlib.sha1(text.encode()).hexdigest()}.txt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return CorpusConfig((str(path),))


def prepare_text(config, text: str):
    """The data stage of ``config`` on ``text``."""
    from w2v_jax.run import prepare

    return prepare(config, text_corpus(text))
