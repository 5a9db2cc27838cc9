"""The notebook for any run: run as the README says, it explores the run its parameter names and
leaves the repository as it was; on a run without PTB's words it chooses its probe words from
the run's vocabulary and says so; its map's labels overprint nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, prepare_text, topic_config, topic_corpus
from w2v_jax.evaluation import explore
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.run import train

NOTEBOOK = REPO / "experiments" / "explore.ipynb"


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def run_notebook(workdir) -> list[dict]:
    """The notebook executed on ``workdir`` through nbclient: its code cells' outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["W2V_JAX_WORKDIR"] = str(workdir)
    try:
        nbclient.NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(REPO / "experiments")}},
        ).execute()
    finally:
        del os.environ["W2V_JAX_WORKDIR"]
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def text_of(outputs: list[dict]) -> str:
    return "".join(out.get("text", "") for out in outputs)


@pytest.mark.slow
def test_the_readmes_command_explores_a_run_and_leaves_git_status_clean(ptb_run, tmp_path):
    pytest.importorskip("nbconvert")
    workdir, _ = ptb_run
    before = git_status()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "html",
            "--execute",
            "experiments/explore.ipynb",
            "--output-dir",
            str(tmp_path / "notebook"),
        ],
        cwd=REPO,
        env={**os.environ, "W2V_JAX_WORKDIR": str(workdir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "notebook" / "explore.html").read_text()
    assert "chip: " in html and "6,719 words" in html and "wordsim353: Spearman" in html
    assert "probe words: chip, intel, stock, president, japan (PTB words)" in html
    assert "image/png" in html  # the map
    assert git_status() == before


def test_on_any_run_it_chooses_its_own_words_and_says_so(tmp_path):
    config = topic_config(num_epochs=2)
    prepared = prepare_text(config, topic_corpus(sentences=1500)[0])
    train(config, data=prepared, workdir=tmp_path, progress=False)
    outputs = run_notebook(tmp_path)
    text = text_of(outputs)
    words = explore.probe_words(Embeddings.from_checkpoint(tmp_path).vocab, 5)
    what = "this run's words: the most frequent content words"
    assert f"probe words: {', '.join(words)} ({what})" in text
    assert f"the map's words: {what}" in text
    assert "no Google analogy question has all its words" in text
    assert "wordsim353: not scored (0% of pairs known)" in text
    assert any("image/png" in out.get("data", {}) for out in outputs), "the PCA map"
    streams = [out for out in outputs if out.get("output_type") == "stream"]
    assert not [out for out in streams if out["name"] == "stderr"], "no warnings, no logs"


def test_a_run_that_is_not_there_is_said_in_one_line(tmp_path):
    with pytest.raises(Exception, match=r"no run at .*nothing: set W2V_JAX_WORKDIR"):
        run_notebook(tmp_path / "nothing")


def overlaps(figure) -> int:
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in figure.axes[0].texts if t.get_text()]
    return sum(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


@pytest.mark.parametrize("spread", [1.0, 0.05])
def test_the_maps_labels_overprint_nothing(spread):
    """Thirty words, spread out or crowded into a small patch: no two labels overlap."""
    rng = np.random.default_rng(0)
    words = [f"word{i:02d}" for i in range(30)]
    vectors = rng.normal(size=(30, 16)) * np.r_[[1.0, 0.8], np.full(14, spread)]
    figure = explore.word_map(Embeddings(tuple(words), vectors), words)
    assert len([t for t in figure.axes[0].texts if t.get_text()]) == 30
    assert overlaps(figure) == 0
