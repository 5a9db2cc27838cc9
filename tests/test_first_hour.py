"""A new user's first hour, through the real entry point in its own process: a plain run writes
its results and prints no warnings; a damaged checkpoint, a signal, a mismatched --num-epochs,
bad flags and a failing evaluation each end in one clear line and a known exit status."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import common, ptb_skipgram, sweep
from tests.conftest import ptb_directory
from tests.helpers import REPO, prepare_text, smoke_config, topic_corpus
from w2v_jax.evaluation import explore
from w2v_jax.evaluation.benchmark_files import BENCHMARK_FILES, HEADLINE
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.presets import preset
from w2v_jax.run import train

MAIN = [sys.executable, "-m", "experiments.ptb_skipgram"]
# A small, quick model; --execution.deterministic makes the bitwise comparisons hold on a GPU too.
SMALL = ["--embed-size", "16", "--batch-size", "2048", "--no-progress", "--execution.deterministic"]
STEPS_PER_EPOCH = 168  # PTB's 343,062 centers in batches of 2,048


def run_main(*flags: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*MAIN, *flags], cwd=cwd, capture_output=True, text=True, timeout=300)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def two_epochs(ptb_dir, tmp_path_factory) -> tuple[Path, list[str], subprocess.CompletedProcess]:
    """Two epochs of the main job in a workdir: its path, its flags and the finished process."""
    workdir = tmp_path_factory.mktemp("two_epochs")
    flags = [*SMALL, "--num-epochs", "2", "--data-dir", str(ptb_dir), "--workdir", str(workdir)]
    done = run_main(*flags)
    assert done.returncode == 0, done.stderr
    return workdir, flags, done


def copy_of(two_epochs, tmp_path) -> tuple[Path, list[str]]:
    """A copy of the two-epoch workdir, and the same command pointed at it."""
    workdir, flags, _ = two_epochs
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    return copy, [*flags[:-1], str(copy)]


# ----------------------------------------------------------------------- a plain run


@pytest.mark.slow
def test_a_plain_run_writes_its_results_and_prints_no_warnings(two_epochs):
    workdir, _, done = two_epochs
    assert "absl" not in done.stderr and "warning" not in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "neighbours of chip:" in out and "google analogies: accuracy" in out
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["evaluation"]["wordsim353"]["pairs"] > 100
    # One point of the loss curve per dispatch (64 steps): 3 dispatches an epoch, the last short.
    curve = metrics["loss_curve"]
    assert [step for step, _ in curve] == [64, 128, 168, 232, 296, 336]
    assert all(0.2 < loss < 0.7 for _, loss in curve) and curve[-1][1] < curve[0][1]
    assert [e["step"] for e in metrics["epochs"]] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert (workdir / "loss.png").stat().st_size > 5000


def test_evaluation_needs_no_gensim():
    """The shipped benchmark files are used; gensim is made unimportable."""
    script = (
        "import sys; sys.modules['gensim'] = None\n"
        "import numpy as np\n"
        "from w2v_jax.evaluation.benchmark_files import benchmark_path\n"
        "from w2v_jax.evaluation.evaluate import Embeddings\n"
        "words = set()\n"
        "for name in ('wordsim353', 'simlex999'):\n"
        "    for line in benchmark_path(name).read_text().splitlines()[2:80]:\n"
        "        words.update(w.lower() for w in line.split('\\t')[:2])\n"
        "words = sorted(words)\n"
        "vectors = np.random.default_rng(0).normal(size=(len(words), 8))\n"
        "scores = Embeddings(tuple(words), vectors).evaluate_benchmarks()\n"
        "print(scores['wordsim353']['pairs'], scores['simlex999']['pairs'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    wordsim_pairs, simlex_pairs = map(int, done.stdout.split())
    assert wordsim_pairs >= 78 and simlex_pairs >= 78


def test_the_shipped_benchmark_files_are_gensims():
    gensim_data = pytest.importorskip("gensim").__path__[0]
    for name in HEADLINE:  # the others are hyperwords' (tests/test_evaluate.py)
        file = BENCHMARK_FILES[name]
        shipped = (REPO / "w2v_jax" / "benchmarks" / file).read_bytes()
        assert shipped == (Path(gensim_data) / "test" / "test_data" / file).read_bytes(), name


def test_reading_a_checkpoint_logs_nothing(tmp_path, capfd, caplog):
    """Orbax's routine notices on every read-only open and save stay out of a notebook."""
    config = smoke_config(min_freq=1, num_epochs=1)
    prepared = prepare_text(config, topic_corpus(sentences=200)[0])
    train(config, data=prepared, evaluation=None, progress=False, workdir=tmp_path)
    caplog.set_level(logging.INFO, logger="absl")
    Embeddings.from_checkpoint(tmp_path)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "read only" not in capfd.readouterr().err


def test_the_progress_bar_shows_the_running_loss_and_speed(capsys):
    config = smoke_config(min_freq=1, num_epochs=1, **{"execution.steps_per_dispatch": 2})
    prepared = prepare_text(config, topic_corpus(sentences=400)[0])
    train(config, data=prepared, evaluation=None, progress=True)
    bar = capsys.readouterr().err
    assert re.search(r"epoch 1/1.*loss \d\.\d{3}, [\d,]+ centers/s", bar), bar


def test_a_finished_run_called_again_draws_no_progress_bar(tmp_path, capsys):
    config = smoke_config(min_freq=1, num_epochs=1)
    prepared = prepare_text(config, topic_corpus(sentences=200)[0])
    train(config, data=prepared, evaluation=None, progress=True, workdir=tmp_path)
    assert "step" in capsys.readouterr().err
    train(config, data=prepared, evaluation=None, progress=True, workdir=tmp_path)
    assert "step" not in capsys.readouterr().err, "no empty bar"


# ----------------------------------------------------------------------- where runs go


def test_run_names_say_what_changes_the_computation():
    assert common.run_name(preset("book")) == "book"
    assert (
        common.run_name(preset("book", num_epochs=10, **{"optimizer.lr": 0.002}))
        == "book,optimizer.lr=0.002"
    )
    assert (
        common.run_name(
            preset("book", **{"execution.deterministic": True, "execution.layout": "padded"})
        )
        == "book"
    )
    assert common.run_name(preset("fast")) == "fast"
    assert common.run_name(preset("fast", num_epochs=8)) == "fast"
    # sparse_sgd decays its rate over the whole run: its epochs are part of the run.
    assert (
        common.run_name(
            preset("fast", num_epochs=8, **{"optimizer.name": "sparse_sgd", "optimizer.lr": 2500.0})
        )
        == "fast,optimizer.name=sparse_sgd,optimizer.lr=2500.0,num_epochs=8"
    )
    assert common.run_name(preset("book", resample_each_epoch=True, **{"optimizer.lr": 0.002})) == (
        "best,subsample_each_epoch=False"
    )
    anew = dict(resample_each_epoch=True, subsample_each_epoch=True)
    assert common.run_name(preset("book", **anew, **{"optimizer.lr": 0.002})) == "best"
    args = ptb_skipgram.parse_args(["--optimizer.lr", "0.002"])
    assert args.workdir is None  # derived from the config when the job runs
    assert sweep.parse_args(["ptb_lr"]).out == Path("runs/sweeps")


def test_messages_speak_in_flags_but_leave_paths_alone():
    message = (
        "the checkpoints in runs/ptb_skipgram/book,optimizer.lr=0.002/checkpoints were made with "
        "optimizer.lr=0.01, this run has optimizer.lr=0.002 and resample_each_epoch=True: start "
        "over with restart=True or use another workdir."
    )
    assert common.in_flags(message) == (
        "the checkpoints in runs/ptb_skipgram/book,optimizer.lr=0.002/checkpoints were made with "
        "--optimizer.lr 0.01, this run has --optimizer.lr 0.002 and --resample-each-epoch: start "
        "over with "
        "--restart or use another --workdir."
    )
    assert common.in_flags("Config.batch_size=0 must be at least 1") == (
        "--batch-size 0 must be at least 1"
    )


def test_runs_are_ignored_by_git():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "check-ignore", "-q", "runs/ptb_skipgram/book/metrics.json"], cwd=REPO
    )
    assert done.returncode == 0, "runs/ must be ignored"


@pytest.mark.slow
def test_the_default_workdir_is_under_runs_named_by_the_config(ptb_dir, tmp_path):
    done = run_main(*SMALL, "--num-epochs", "1", "--data-dir", str(ptb_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workdir = tmp_path / "runs" / "ptb_skipgram" / "book,batch_size=2048,embed_size=16"
    assert f"workdir: {workdir.relative_to(tmp_path)}" in done.stdout
    assert (workdir / "metrics.json").is_file() and steps(workdir) == [STEPS_PER_EPOCH]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


# ----------------------------------------------------------------------- damaged checkpoints


def garble_params(step_dir: Path) -> None:
    for path in (step_dir / "params").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")


DAMAGE = {
    "params manifest deleted": lambda step: (step / "params" / "manifest.ocdbt").unlink(),
    "params files garbled": garble_params,
    "progress metadata deleted": lambda step: (step / "progress" / "metadata").unlink(),
    "config metadata garbled": lambda step: (step / "config" / "metadata").write_text("{oops"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_step_is_set_aside_and_training_goes_on(two_epochs, tmp_path, damage):
    workdir, flags = copy_of(two_epochs, tmp_path)
    older, newest = steps(workdir)
    DAMAGE[damage](workdir / "checkpoints" / str(newest))
    done = run_main(*flags)
    assert done.returncode == 0, done.stderr
    assert lines(done.stderr) == [done.stderr.strip()], "one line"
    assert re.fullmatch(
        rf"warning: checkpoint step {newest} in \S+ cannot be read \(.+\); "
        rf"moved to \S+/damaged/step_{newest}; trying an older step",
        done.stderr.strip(),
    )
    assert (workdir / "damaged" / f"step_{newest}").is_dir()
    out = lines(done.stdout)
    resumed = out.index(f"resumed from the checkpoint at step {older} in {workdir}")
    assert resumed < out.index(next(line for line in out if line.startswith("epoch 2/2")))
    assert steps(workdir) == [older, newest], "the retrained epoch is saved over the step"
    original = Embeddings.from_checkpoint(two_epochs[0])
    np.testing.assert_array_equal(Embeddings.from_checkpoint(workdir).vectors, original.vectors)
    again = run_main(*flags)  # and the run after resumes as usual
    assert again.returncode == 0 and again.stderr == ""
    assert f"already trained: the checkpoint at step {newest} in {workdir}" in again.stdout


# ----------------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_exits_130(ptb_dir, tmp_path, signum):
    flags = [
        *SMALL,
        "--num-epochs",
        "8",
        "--execution.steps-per-dispatch",
        "8",
        "--data-dir",
        str(ptb_dir),
        "--workdir",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        [*MAIN, *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "checkpoints").is_dir() or not steps(tmp_path):
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert len(lines(err)) == 1, err
    match = re.fullmatch(
        r"interrupted at epoch (\d+), step (\d+); run the same command to "
        r"resume",
        err.strip(),
    )
    epoch, step = int(match.group(1)), int(match.group(2))
    assert step in steps(tmp_path), "a checkpoint of the point it stopped at"
    assert (epoch - 1) * STEPS_PER_EPOCH < step <= epoch * STEPS_PER_EPOCH
    assert "neighbours of" not in out
    resumed = run_main(*flags)
    assert resumed.returncode == 0, resumed.stderr
    assert lines(resumed.stdout)[2].startswith("memory: tables ")
    assert lines(resumed.stdout)[3].startswith("examples: drawn on the host, rows kept on the")
    assert lines(resumed.stdout)[4] == f"resumed from the checkpoint at step {step} in {tmp_path}"


@pytest.mark.slow
def test_ctrl_c_at_the_start_is_one_line(ptb_dir, tmp_path):
    """Ctrl-C right after start-up (in the data stage, or at the latest in the first epoch)."""
    process = subprocess.Popen(
        [*MAIN, *SMALL, "--data-dir", str(ptb_dir), "--workdir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("workdir:")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert re.fullmatch(
        r"interrupted; run the same command to resume from the newest checkpoint"
        r"|interrupted at epoch 1, step \d+; run the same command to resume",
        err.strip(),
    ), err


@pytest.mark.parametrize("after", [0.1, 0.4, 0.8])
def test_ctrl_c_while_jax_imports_is_one_line(tmp_path, after):
    """Ctrl-C in the first second, before the job has set its own handling (while JAX and the
    library import): one line, and the process ends as Ctrl-C ends one."""
    process = subprocess.Popen(
        [*MAIN, *SMALL, "--workdir", str(tmp_path / "run")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (-signal.SIGINT, 130), err
    assert len(lines(err)) == 1 and err.startswith("interrupted"), err


# ----------------------------------------------------------------------- epochs


@pytest.mark.slow
def test_fewer_epochs_than_the_workdir_holds_is_refused(two_epochs, tmp_path):
    workdir, flags = copy_of(two_epochs, tmp_path)
    done = run_main(
        *flags[: flags.index("--num-epochs")],
        "--num-epochs",
        "1",
        *flags[flags.index("--num-epochs") + 2 :],
    )
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"error: the checkpoints in {workdir / 'checkpoints'} hold 2 epochs, more than this "
        f"run's --num-epochs 1: ask for --num-epochs 2 or more to use them, --restart to train "
        f"1 from scratch, or use another --workdir."
    ]
    assert json.loads((workdir / "metrics.json").read_text())["config"]["num_epochs"] == 2


@pytest.mark.slow
def test_growing_epochs_under_sparse_sgd_is_refused(ptb_dir, tmp_path):
    flags = [
        "--preset",
        "fast",
        "--optimizer.name",
        "sparse_sgd",
        "--optimizer.lr",
        "2500",
        "--embed-size",
        "16",
        "--no-progress",
        "--data-dir",
        str(ptb_dir),
        "--workdir",
        str(tmp_path),
    ]
    first = run_main(*flags, "--num-epochs", "1")
    assert first.returncode == 0 and "absl" not in first.stderr, first.stderr
    done = run_main(*flags, "--num-epochs", "2")
    assert done.returncode == 1 and len(lines(done.stderr)) == 1
    assert (
        "were made with --num-epochs 1, this run has --num-epochs 2: resuming would not "
        "continue that run. Start over with --restart"
    ) in done.stderr


# ----------------------------------------------------------------------- flags and evaluation


@pytest.mark.parametrize(
    "flags, status, message",
    [
        (
            ["--neighbours", "0"],
            2,
            "error: --neighbours 0: must be at least 1 (see --help)",
        ),
        (
            ["--neighbours", "-1"],
            2,
            "error: --neighbours -1: must be at least 1 (see --help)",
        ),
        (["--batch-size", "0"], 2, "error: --batch-size 0 must be at least 1 (see --help)"),
        (
            ["--benchmarks-dir", "/nonexistent"],
            1,
            "error: the benchmarks directory /nonexistent "
            "lacks wordsim353.tsv, simlex999.txt, questions-words.txt: "
            "it must hold wordsim353.tsv, simlex999.txt, questions-words.txt",
        ),
    ],
)
def test_bad_flags_are_one_line_before_any_work(tmp_path, flags, status, message):
    done = run_main(*flags, "--workdir", str(tmp_path / "run"))
    assert done.returncode == status
    assert lines(done.stderr) == [message]
    assert "data:" not in done.stdout


def test_a_read_only_workdir_is_one_line(tmp_path):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    command = [*MAIN, "--workdir", str(read_only)]
    if os.geteuid() == 0:  # root writes anywhere unless it gives up CAP_DAC_OVERRIDE
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        command = ["setpriv", "--bounding-set=-dac_override", "--inh-caps=-dac_override", *command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot write to the workdir {read_only} (Permission "
        f"denied): choose another --workdir\n"
    )


def test_a_workdir_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_main("--workdir", str(blocker / "run"))
    assert done.returncode == 1
    assert re.fullmatch(
        rf"error: cannot write to the workdir {blocker}/run \(.+\): choose "
        r"another --workdir",
        done.stderr.strip(),
    )


@pytest.mark.slow
def test_an_unknown_query_word_is_one_line(two_epochs, tmp_path):
    _, flags = copy_of(two_epochs, tmp_path)
    done = run_main(*flags, "--query", "chip", "notaword", "--neighbours", "2")
    assert done.returncode == 0
    assert lines(done.stderr) == ["notaword: not in the vocabulary"]
    assert "neighbours of chip:" in done.stdout


@pytest.mark.slow
def test_a_failing_evaluation_keeps_the_results_and_is_one_line(two_epochs, tmp_path):
    workdir, flags = copy_of(two_epochs, tmp_path)
    (workdir / "metrics.json").unlink()
    (workdir / "loss.png").unlink()
    benchmarks = tmp_path / "benchmarks"
    benchmarks.mkdir()
    for file in BENCHMARK_FILES.values():  # files that cannot be read: not UTF-8
        (benchmarks / file).write_bytes(b"\xff\xfe not text\n")
    done = run_main(*flags, "--benchmarks-dir", str(benchmarks))
    assert done.returncode == 1
    assert re.fullmatch(
        r"error: evaluation failed: cannot read the benchmark file \S+: .*can't decode byte "
        rf"0xff.* \(the run's checkpoint, metrics.json and loss.png are in {workdir}\)",
        done.stderr.strip(),
    )
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert "cannot read" in metrics["evaluation_error"] and metrics["final_loss"] < 0.5
    assert (workdir / "loss.png").is_file()


# ----------------------------------------------------------------------- the tests themselves


def test_the_tests_find_ptb_in_the_user_cache(tmp_path, monkeypatch):
    (tmp_path / "w2v_jax").mkdir()
    (tmp_path / "w2v_jax" / "ptb.zip").write_bytes(b"")
    monkeypatch.delenv("W2V_JAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ptb_directory() == tmp_path / "w2v_jax"


@pytest.mark.parametrize("required", [False, True])
def test_skipped_ptb_tests_are_said_and_ci_refuses_them(tmp_path, required):
    env = {**os.environ, "W2V_JAX_DATA": str(tmp_path)}
    env.pop("W2V_JAX_REQUIRE_PTB", None)
    if required:
        env["W2V_JAX_REQUIRE_PTB"] = "1"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_data.py",
            "-k",
            "ptb",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if required:
        assert done.returncode != 0 and "skipped" not in done.stdout.splitlines()[-1]
    else:
        assert done.returncode == 0, done.stdout
        assert re.search(
            rf"\d+ tests on the real PTB skipped: put ptb.zip in {tmp_path} or set "
            r"W2V_JAX_DATA to its directory",
            done.stdout,
        ), done.stdout


GERMAN_FUNCTION_WORDS = """die der und in zu den das nicht von sie ist des sich mit dem dass er es
ein ich auf so eine auch als an nach wie im für man aber aus durch wenn nur war noch werden bei hat
wir was wird sein einen welche sind oder zur um haben einer mir über ihm diese einem ihr uns da zum
kann doch vor dieser mich ihn du hatte seine mehr am denn nun unter sehr selbst schon hier bis habe
ihre dann ihnen seiner alle wieder meine gegen vom ganz wo muss ohne eines können sei""".split()


def german_like_corpus(sentences: int = 8000, seed: int = 0) -> str:
    """Lines of German function words (five a line, the commonest first) around two of 3,000
    made-up content words drawn by a Zipf law."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnoprstuvwz"))
    content = ["".join(rng.choice(letters, 7)) for _ in range(3000)]
    weights = 1.0 / np.arange(1, len(content) + 1)
    function_weights = 1.0 / np.arange(1, len(GERMAN_FUNCTION_WORDS) + 1) ** 0.5
    lines = []
    for _ in range(sentences):
        words = list(
            rng.choice(GERMAN_FUNCTION_WORDS, 5, p=function_weights / function_weights.sum())
        )
        words += list(rng.choice(content, 2, p=weights / weights.sum()))
        rng.shuffle(words)
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def test_a_german_corpus_is_shown_content_words_not_its_function_words(tmp_path, caplog):
    """The English stop list knows none of die, der, und: the words offered are those after the
    corpus's 200 most frequent, and the line says so."""
    config = smoke_config(min_freq=1, num_epochs=1, subsample_t=1.0)
    prepared = prepare_text(config, german_like_corpus())
    caplog.set_level(logging.INFO, logger="w2v_jax")
    trained = train(config, data=prepared, progress=False, workdir=tmp_path)
    offered = list(trained.metrics["neighbours"])
    assert len(offered) == 3 and not set(offered) & set(GERMAN_FUNCTION_WORDS), offered
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("query words"))
    assert line.startswith(
        f"query words: {', '.join(offered)}, the most frequent words after the 200"
    )
    # An English vocabulary of as many words keeps its most frequent content words.
    stop = "the of and to in is that for it with as was on be by at this are from or".split()
    fillers = sorted({word for word in german_like_corpus(3000).split() if len(word) == 7})
    english = ("<unk>", *stop[:10], "kernel", *stop[10:], "driver", "memory", *fillers)
    assert explore.query_words(english) == (
        ["kernel", "driver", "memory"],
        "the most frequent content words",
    )
