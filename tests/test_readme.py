"""Every command the README and the docs show names a module that exists and flags it takes,
their Python blocks run as shown, and the README's first screen holds the two set-up
commands."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import sys
import warnings

import pytest

from tests.helpers import REPO
from w2v_jax import data

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``python -m experiments.X`` or ``benchmarks.X`` command in a
    code block or inline code, its continuation lines joined and its comment dropped."""
    found = []
    for page in PAGES:
        text = page.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python -m ((?:experiments|benchmarks)\.\w+)([^`\n#]*)", text):
            found.append((page.name, f"{match.group(1)}{match.group(2)}".strip().rstrip('"')))
    return found


COMMANDS = shown_commands()


def test_the_first_screen_holds_the_two_set_up_commands():
    first = (REPO / "README.md").read_text().splitlines()[:8]
    assert any("pip install -e . && python -m experiments.ptb_skipgram" in line for line in first)
    assert any('pip install -e ".[test]" && pytest' in line for line in first)
    assert len((REPO / "README.md").read_text().splitlines()) < 250, "a guide, not a reference"


@pytest.mark.parametrize("page, command", COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_a_shown_command_parses(page, command):
    module_name, *argv = shlex.split(command)
    module = importlib.import_module(module_name)
    parse = getattr(module, "parse_args", None)
    assert parse is not None, f"{module_name} has no parse_args"
    argv = [arg for arg in argv if not arg.startswith("$") and arg not in ("&", "|", ";")]
    try:
        parse(argv)
    except SystemExit as exit_:
        assert exit_.code == 0 and "--help" in argv, f"{page}: {command} does not parse"


def shown_python() -> list[tuple[str, list[str]]]:
    """(page, its Python blocks in order) for every page of the README and the docs that shows
    Python."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)
        if blocks:
            found.append((page.name, blocks))
    return found


PYTHON = shown_python()


def test_the_pages_show_python():
    assert sum(len(blocks) for _, blocks in PYTHON) >= 4, PYTHON


@pytest.mark.slow
@pytest.mark.parametrize("page, blocks", PYTHON, ids=[page for page, _ in PYTHON])
def test_every_python_block_of_a_page_runs_without_a_warning(
    page, blocks, ptb_dir, tmp_path, monkeypatch
):
    """A page's blocks run in order in one namespace, in a fresh directory where the README's
    first command (the main job) has run, as a reader who follows the page would run them: a
    moved or renamed name fails here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(data.ptb.DATA_ENV_VAR, str(ptb_dir))
    if "runs/ptb_skipgram/book" in "".join(blocks):
        from experiments import ptb_skipgram

        ptb_skipgram.main(["--no-progress"])
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for block in blocks:
            exec(compile(block, page, "exec"), namespace)


def test_the_old_home_of_embeddings_still_imports_with_a_warning_naming_the_new():
    sys.modules.pop("w2v_jax.evaluate", None)
    with pytest.warns(DeprecationWarning, match="import Embeddings from w2v_jax"):
        from w2v_jax.evaluate import Embeddings
    from w2v_jax.evaluation.evaluate import Embeddings as moved

    assert Embeddings is moved


def own_text_walk() -> list[str]:
    """The commands of the README's "Your own text, step by step", in order, comments dropped."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("**Your own text, step by step.**") :]
    block = section[section.index("```bash\n") + len("```bash\n") : section.index("```\n", 10)]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def english_text(path, rng) -> None:
    """Sentences of the benchmarks' own words (so that they are covered), capitalised and
    punctuated as prose is, each word often enough to be kept."""
    words = set()
    for name in ("wordsim353.tsv", "simlex999.txt"):
        for line in (REPO / "w2v_jax" / "benchmarks" / name).read_text().splitlines()[1:]:
            words.update(w.lower() for w in line.split("\t")[:2] if w.isalpha())
    words = sorted(words | {"time", "world"})
    lines = []
    for _ in range(4000):
        chosen = list(rng.choice(words, 8))
        sentence = f"{chosen[0].capitalize()} {' '.join(chosen[1:4])}, and the {chosen[4]}"
        lines.append(f"{sentence}; {' '.join(chosen[5:])}.")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_the_own_text_walk_goes_from_a_text_file_to_neighbours_scores_and_the_notebook(
    tmp_path,
):
    """Each command of the walk, as the README writes it, from the repository root, on a text
    of one's own: neighbours and scores printed, vectors exported, the notebook run, a sweep
    listed; afterwards git status is what it was."""
    import os
    import subprocess
    import uuid

    import numpy as np

    pytest.importorskip("nbconvert")
    commands = own_text_walk()
    assert [c.split()[:3] for c in commands if c.startswith("python")] == [
        ["python", "-m", "experiments.train"],
        ["python", "-m", "experiments.vectors"],
        ["python", "-m", "experiments.vectors"],
        ["python", "-m", "experiments.sweep"],
    ]
    name = f"walk_{uuid.uuid4().hex[:8]}"  # the runs it writes are its own, removed after
    corpus = REPO / "runs" / f"{name}.txt"
    corpus.parent.mkdir(exist_ok=True)
    english_text(corpus, np.random.default_rng(0))
    env = {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache")}
    status = ["git", "status", "--porcelain", "--untracked-files=all"]
    before = subprocess.run(status, cwd=REPO, capture_output=True, text=True).stdout
    printed = []
    try:
        for command in commands:
            if command.startswith("pip install"):
                continue  # the test extra holds what the notebook extra installs
            command = command.replace("--corpus my_text.txt", f"--corpus runs/{name}.txt")
            command = command.replace("my_text", name)
            # This interpreter's python and jupyter, whatever PATH says.
            command = command.replace("python -m ", f"{sys.executable} -m ")
            command = command.replace("jupyter nbconvert", f"{sys.executable} -m jupyter nbconvert")
            done = subprocess.run(
                command, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (command, done.stderr)
            printed.append(done.stdout)
    finally:
        for path in (REPO / "runs").glob(f"{name}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        shutil.rmtree(REPO / "runs" / "train" / f"{name}.txt", ignore_errors=True)
        shutil.rmtree(REPO / "runs" / "sweeps" / "ptb_lr" / f"{name}.txt", ignore_errors=True)
    trained, again, exported, _, listed = printed
    assert "query words: " in trained and trained.count("neighbours of ") == 3
    assert re.search(r"wordsim353: Spearman -?0\.\d+, Pearson .* \(\d+% of pairs known\)", trained)
    assert "neighbours of time:" in again and "neighbours of world:" in again
    assert exported.count("wrote ") == 3
    assert re.search(r"sweep ptb_lr: 24 points, 0 finished", listed)
    after = subprocess.run(status, cwd=REPO, capture_output=True, text=True).stdout
    assert after == before
