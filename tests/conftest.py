"""Shared fixtures: the real PTB from ../shared/data (or $W2V_JAX_DATA) and small corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from w2v_jax import data

REPO = Path(__file__).resolve().parents[1]


def ptb_directory() -> Path | None:
    for candidate in (os.environ.get(data.DATA_ENV_VAR), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "ptb.zip").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    directory = ptb_directory()
    if directory is None:
        pytest.skip("ptb.zip not found: set W2V_JAX_DATA to the directory that holds it")
    return directory


@pytest.fixture(scope="session")
def ptb_zip_bytes(ptb_dir: Path) -> bytes:
    return (ptb_dir / "ptb.zip").read_bytes()


@pytest.fixture(scope="session")
def ptb_text(ptb_dir: Path) -> str:
    return data.read_ptb(ptb_dir)


@pytest.fixture(scope="session")
def ptb_run(ptb_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    """One epoch of the main job on PTB: its workdir (metrics, checkpoints) and metrics."""
    from experiments import ptb_skipgram

    workdir = tmp_path_factory.mktemp("ptb_run")
    metrics = ptb_skipgram.main(["--num-epochs", "1", "--workdir", str(workdir),
                                 "--data-dir", str(ptb_dir), "--no-progress"])
    return workdir, metrics


def topic_corpus(num_topics: int = 6, fillers_per_topic: int = 5, sentences: int = 3000,
                 seed: int = 0) -> tuple[str, list[tuple[str, str]]]:
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
