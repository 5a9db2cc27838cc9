"""The main job end to end on the real PTB, and its command line."""

import json
import re
import subprocess
import sys

import pytest

from experiments import common, ptb_skipgram, train
from tests.helpers import REPO
from w2v_jax.config import Config
from w2v_jax.evaluation.benchmark_files import BENCHMARK_FILES
from w2v_jax.presets import preset
from w2v_jax.sections import SECTIONS

METRICS_FIELDS = {
    "config",
    "versions",
    "device",
    "vocab_size",
    "num_centers",
    "num_pairs",
    "data_seconds",
    "compile_seconds",
    "epochs",
    "final_loss",
    "neighbours",
    "evaluation",
    "evaluation_seconds",
    "checkpoint_seconds",
    "resumed_from_step",
}
EPOCH_FIELDS = {
    "epoch",
    "loss",
    "seconds",
    "centers",
    "pairs",
    "centers_per_second",
    "pairs_per_second",
}


@pytest.mark.slow
def test_one_epoch_on_ptb(ptb_run):
    workdir, metrics = ptb_run
    written = json.loads((workdir / "metrics.json").read_text())
    assert METRICS_FIELDS <= set(written) and written == json.loads(json.dumps(metrics))
    assert EPOCH_FIELDS <= set(written["epochs"][0])
    assert written["vocab_size"] == 6719 and written["config"]["num_epochs"] == 1
    assert written["final_loss"] < 0.48
    assert written["num_pairs"] > written["num_centers"] > 300_000
    assert len(written["neighbours"]["chip"]) == 5
    assert (workdir / "loss.png").stat().st_size > 1000
    for name in ("wordsim353", "simlex999"):
        assert 0.05 < written["evaluation"][name]["spearman"] < 0.6
        assert 0.3 < written["evaluation"][name]["coverage"] < 1
    assert written["evaluation"]["google_analogies"]["coverage"] > 0.1
    # PTB's coverage (61%, 42%, 15%) is above the floor: every benchmark is scored.
    # PTB's 6,719 words cover 5% of the Rare Words' pairs, below the floor; every other
    # benchmark is scored.
    unscored = [name for name, score in written["evaluation"].items() if not score["scored"]]
    assert unscored == ["rare_words"] and len(written["evaluation"]) == len(BENCHMARK_FILES)
    assert written["evaluation_seconds"] < 30 and written["checkpoint_seconds"] >= 0


@pytest.mark.slow
def test_main_job_prints_epochs_neighbours_and_scores(ptb_dir, tmp_path, capsys):
    ptb_skipgram.main(
        [
            "--num-epochs",
            "1",
            "--workdir",
            str(tmp_path),
            "--data-dir",
            str(ptb_dir),
            "--no-progress",
            "--embed-size",
            "20",
            "--batch-size",
            "4096",
        ]
    )
    out = capsys.readouterr().out
    assert "epoch 1/1: loss" in out and "centers/s" in out
    assert "neighbours of chip:" in out and "cosine sim=" in out
    assert "wordsim353: Spearman" in out and "google analogies: accuracy" in out


def test_flags_override_config_fields():
    args = ptb_skipgram.parse_args(
        ["--optimizer.lr", "0.002", "--num-epochs", "10", "--resample-each-epoch"]
    )
    config = args.config
    assert (config.optimizer.lr, config.num_epochs, config.resample_each_epoch) == (0.002, 10, True)
    assert config.batch_size == 512


def test_invalid_flag_value_exits_with_the_config_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ptb_skipgram.parse_args(["--batch-size", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --batch-size 0 must be at least 1 (see --help)\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch-size", "x"], "Error parsing --batch-size: invalid literal for int()"),
        (["--objective", "foo"], "invalid choice 'foo' for argument '--objective'."),
        (["--neighbours", "0"], "--neighbours 0: must be at least 1"),
        (["--execution.mesh", "data=x"], "--execution.mesh data=x: write it as data=N,vocab=M"),
        (["--noise.groups", "3"], "--noise.groups 3 must divide --batch-size 512"),
        (["--coordinator", "a:1"], "--coordinator, --num-processes and --process-id go together"),
        (["--scores-each-epoch"], "Missing value for argument '--scores-each-epoch'"),
    ],
)
def test_every_refused_value_is_one_line_in_flags(capsys, argv, message):
    """A value the parser refuses, or the Config, a section or the job's flags refuse."""
    with pytest.raises(SystemExit) as exit_info:
        ptb_skipgram.parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.endswith(" (see --help)\n"), err
    assert err.count("\n") == 1 and "╭" not in err and "Config" not in err


def test_a_missing_flag_is_named_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: missing --corpus PATH (see --help)\n"


def test_preset_then_flags():
    config = ptb_skipgram.parse_args(["--preset", "fast", "--batch-size", "1024"]).config
    assert config.noise.sharing == "per_batch" and config.batch_size == 1024
    assert (config.noise.shared, config.noise.groups, config.optimizer.name) == (
        32,
        16,
        "rowwise_adagrad",
    )
    assert config.optimizer.lr == 0.2 and config.noise.count == 5  # the preset's, then the book's
    args = ptb_skipgram.parse_args(
        ["--optimizer.lr=0.005", "--preset=best", "--optimizer.name", "sparse_sgd"]
    )
    assert (args.config.optimizer.lr, args.config.optimizer.name, args.config.num_epochs) == (
        0.005,
        "sparse_sgd",
        10,
    )
    assert train.parse_args(["--corpus", "a.txt"]).config == preset("fast")


def test_help_describes_every_flag_in_words_grouped_by_section(capsys):
    with pytest.raises(SystemExit):
        ptb_skipgram.parse_args(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m experiments.ptb_skipgram")
    # tyro draws boxes where stdout is UTF-8, else titles over rules of "-": either is read.
    lines = [re.sub(r"^╭─ (.*?) ─+╮$", r"\1", line) for line in text.splitlines()]
    lines = [re.sub(r"^[│ ]+|[│ ]+$", "", line) for line in lines]
    lines = [line for line in lines if line and not re.fullmatch(r"[╭╰─-].*[╮╯─-]|-+", line)]
    plain = "\n".join(lines)
    entries = re.findall(r"^(--[\w.-]+)(.*?)(?=^--|^\w+ options|\Z)", plain, re.M | re.S)
    for path in Config.paths():
        assert f"--{common.flag_name(path)}" in {flag for flag, _ in entries}, path
    for flag, description in entries:
        words = re.sub(r"\(default[^)]*\)", "", " ".join(description.split()))
        assert len(re.findall(r"[a-z]{3,}", words)) >= 3, f"{flag} is not described"
    shown = " ".join(plain.split())
    assert "Centers per minibatch. (default: 512)" in shown
    assert "--noise.sharing {per_context,per_batch}" in shown
    for section in SECTIONS:
        heading = re.search(rf"^{section} options$", plain, re.M)
        assert heading and heading.start() < plain.index(f"--{section}.")


def test_a_misspelt_or_abbreviated_flag_is_refused_with_the_nearest(capsys):
    for given, nearest in (
        ("--num-epoch", "--num-epochs"),
        ("--neighbors", "--neighbours"),
        ("--batch", "--batch-size"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            ptb_skipgram.parse_args([given, "2"])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == (
            f"error: Unrecognized options: {given}, 2; did you mean {nearest}? (see --help)\n"
        )


def test_a_flag_of_an_earlier_version_is_answered_with_its_name_now(capsys):
    for argv, answer in (
        (
            ["--lr", "0.1", "--noise-sharing", "per_batch"],
            "--lr is --optimizer.lr now; --noise-sharing is --noise.sharing now",
        ),
        (
            ["--no-execution.deterministic"],
            "--no-execution.deterministic is --execution.no-deterministic now",
        ),
        (["--no-scores-each-epoch"], "--no-scores-each-epoch is --scores-each-epoch none now"),
        (["--lr=0.1"], "--lr is --optimizer.lr now"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            ptb_skipgram.parse_args(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == f"error: {answer} (see --help)\n"
    args = ptb_skipgram.parse_args(["--optimizer.lr", "0.1", "--execution.no-deterministic"])
    assert args.config.optimizer.lr == 0.1 and args.config.execution.deterministic is False


def test_the_jobs_give_a_freed_large_array_back_to_the_kernel():
    """glibc, once a large array is freed, keeps the next ones in its heap, where freeing one
    below another gives nothing back; a job maps each large array on its own."""
    probe = (
        "import sys, numpy as np, experiments\n"
        "rss = lambda: int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
        "if sys.argv[1] == 'mapped': experiments._map_large_arrays()\n"
        "a = np.ones(2**21); del a\n"  # 16 MiB: glibc's threshold rises to it
        "b = np.ones(2**21); c = np.ones(2**10)\n"
        "before = rss(); del b; print((before - rss()) // 1024)\n"
    )
    given_back = {}
    for how in ("default", "mapped"):
        done = subprocess.run(
            [sys.executable, "-c", probe, how], capture_output=True, text=True, cwd=REPO
        )
        given_back[how] = int(done.stdout.strip() or -1)
    assert given_back["mapped"] >= 15, given_back
    assert given_back["default"] < 8, given_back  # what the job's setting changes


def test_the_jobs_import_what_the_end_of_a_run_needs_while_it_trains():
    """After the first dispatch, one thread imports the evaluation's and the plot's modules,
    which nothing imported before; later dispatches start no other."""
    probe = (
        "import sys, threading\n"
        "from experiments import common\n"
        "before = [m for m in common.IMPORTED_AHEAD if m in sys.modules]\n"
        "hook = common.import_ahead()\n"
        "hook.action(None); hook.action(None)\n"
        "threads = [t for t in threading.enumerate() if t.name == 'import-ahead']\n"
        "[t.join() for t in threads]\n"
        "print(before, len(threads), all(m in sys.modules for m in common.IMPORTED_AHEAD))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.split("\n")[0] == "[] 1 True", done.stderr[-2000:]
