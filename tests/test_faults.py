"""The fault battery: each fault a careful user meets (a damaged or non-finite step, a second
run on a workdir, a dead holder's lock, a disk without room, a failed write, a signal in each
phase, bad inputs, a replaced corpus, a no-op rerun, a reader beside a run) is said in one line
on stderr with its exit code, leaves nothing half-written, and the same command run again ends
bitwise equal to an uninterrupted run."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import train as train_job
from tests.helpers import REPO, topic_corpus
from w2v_jax.training import checkpoint, workdir
from w2v_jax.training.resume import RunCheckpoints

pytestmark = pytest.mark.slow

FLAGS = [
    "--num-epochs",
    "3",
    "--execution.checkpoint-every",
    "4",
    "--min-freq",
    "1",
    "--no-progress",
]
FLAGS += ["--batch-size", "256", "--query", "a0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "topics.txt"
    path.write_text(topic_corpus(sentences=2000)[0])
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def job(corpus: Path, cache: Path, workdir_: Path, *more: str) -> list[str]:
    return [
        "--corpus",
        str(corpus),
        "--cache-dir",
        str(cache),
        "--workdir",
        str(workdir_),
        *FLAGS,
        *more,
    ]


def final_arrays(workdir_: Path) -> list[np.ndarray]:
    """The newest step's parameters and optimiser state, as saved."""
    directory = workdir_ / "checkpoints"
    manager = checkpoint.open_manager(directory, read_only=True)
    step = manager.latest_step()
    targets = {"params": None, "opt_state": None}
    return jax.tree.leaves(checkpoint.restore_latest(manager, targets, step=step)[1])


@pytest.fixture(scope="module")
def reference(corpus, cache, tmp_path_factory) -> list[np.ndarray]:
    """The uninterrupted run every rerun is compared with."""
    workdir_ = tmp_path_factory.mktemp("reference")
    train_job.main(job(corpus, cache, workdir_))
    return final_arrays(workdir_)


def assert_equal_to(reference: list[np.ndarray], workdir_: Path) -> None:
    arrays = final_arrays(workdir_)
    assert len(arrays) == len(reference)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, reference))


def nothing_half_written(workdir_: Path) -> None:
    leftovers = [p for p in workdir_.rglob("*") if "tmp" in p.name]
    assert not leftovers, leftovers


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def steps(workdir_: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir_ / "checkpoints").iterdir() if p.name.isdigit())


def run_cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def interrupted_run(corpus, cache, workdir_, saves: int = 3) -> None:
    """The reference run's command, killed (KeyboardInterrupt) once it has saved ``saves``
    checkpoints."""
    real_save, count = RunCheckpoints.save, []

    def save_then_stop(self, state, history, layout):
        real_save(self, state, history, layout)
        count.append(int(state.step))
        if len(count) == saves:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunCheckpoints, "save", save_then_stop)
        with pytest.raises(SystemExit):
            train_job.main(job(corpus, cache, workdir_))


# ----------------------------------------------------------------------------- damaged steps


def flip_bytes(step_dir: Path) -> None:
    rng = np.random.default_rng(0)
    for path in (step_dir / "params").rglob("*"):
        if path.is_file() and path.parent.name == "d" and path.stat().st_size > 2000:
            data = np.frombuffer(path.read_bytes(), np.uint8).copy()
            data[rng.integers(len(data), size=16)] ^= 0x5A
            path.write_bytes(data.tobytes())


def non_finite(directory: Path, step: int) -> None:
    """Write ``step`` again with a NaN in its tables, the rest as it was."""
    manager = checkpoint.open_manager(directory, read_only=True)
    targets = {name: None for name in ("params", "opt_state", "progress", "config", "vocab")}
    saved = checkpoint.restore_latest(manager, targets, step=step)[1]
    shutil.rmtree(directory / str(step))
    params = jax.tree.map(
        lambda x: np.where(np.eye(*x.shape, dtype=bool), np.nan, x), saved["params"]
    )
    writer = checkpoint.open_manager(directory)
    checkpoint.save(
        writer, step, params, saved["opt_state"], saved["progress"], saved["config"], saved["vocab"]
    )
    writer.wait_until_finished()


@pytest.mark.parametrize("fault", ["flipped bytes", "non-finite values"])
def test_a_damaged_newest_step_is_set_aside_and_the_rerun_ends_as_if_it_never_was(
    fault, corpus, cache, reference, tmp_path, capsys
):
    interrupted_run(corpus, cache, tmp_path)
    newest = steps(tmp_path)[-1]
    if fault == "flipped bytes":
        flip_bytes(tmp_path / "checkpoints" / str(newest))
    else:
        non_finite(tmp_path / "checkpoints", newest)
    capsys.readouterr()
    with pytest.warns(UserWarning) as warned:  # on stderr, one line, from the entry script
        train_job.main(job(corpus, cache, tmp_path))
    assert capsys.readouterr().err == ""
    line = one_line(str(warned[0].message))
    assert len(warned) == 1 and f"checkpoint step {newest}" in line and "moved to" in line
    assert ("non-finite" in line) == (fault == "non-finite values")
    assert (tmp_path / "damaged" / f"step_{newest}").is_dir()
    assert_equal_to(reference, tmp_path)
    nothing_half_written(tmp_path / "checkpoints")


def test_the_job_resuming_past_a_damaged_step_prints_one_line_and_no_report_of_it(
    corpus, cache, reference, tmp_path
):
    """As a user sees it, in a process of its own: the set-aside step's line, and none of the
    reports the failed read leaves behind (closed event loops, abandoned coroutines)."""
    interrupted_run(corpus, cache, tmp_path)
    newest = steps(tmp_path)[-1]
    flip_bytes(tmp_path / "checkpoints" / str(newest))
    done = run_cli(job(corpus, cache, tmp_path))
    assert done.returncode == 0, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"warning: checkpoint step {newest} in ") and "moved to" in line
    assert_equal_to(reference, tmp_path)


def test_experiments_vectors_on_damaged_steps_says_so_in_one_line_each(corpus, cache, tmp_path):
    interrupted_run(corpus, cache, tmp_path)
    for step in steps(tmp_path):
        flip_bytes(tmp_path / "checkpoints" / str(step))
    done = subprocess.run(
        [sys.executable, "-m", "experiments.vectors", str(tmp_path), "--no-scores"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(steps(tmp_path)) + 1, done.stderr  # a warning a step, the error
    assert lines[-1].startswith("error: no complete checkpoint")


# ----------------------------------------------------------------------------- the workdir


def test_a_second_run_on_a_workdir_is_refused_naming_the_holder(corpus, cache, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = run_cli(job(corpus, cache, tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"is in use by pid {holder.pid} on " in line and "choose another --workdir" in line
    assert not (tmp_path / "checkpoints").exists()


HOLD = """
import sys, time
from pathlib import Path
from w2v_jax.training.workdir import WorkdirLock
with WorkdirLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_left_by_a_killed_run_is_taken_over_and_said(
    corpus, cache, reference, tmp_path, capsys
):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    capsys.readouterr()
    train_job.main(job(corpus, cache, tmp_path))
    line = one_line(capsys.readouterr().err)
    assert f"took over the workdir's lock, left by pid {holder.pid} on " in line
    assert (tmp_path / "lock").read_text() == ""  # released
    assert_equal_to(reference, tmp_path)


def test_a_workdir_without_room_for_two_checkpoints_is_refused_before_training(
    corpus, cache, tmp_path, monkeypatch, capsys
):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        workdir.shutil, "disk_usage", lambda path: usage._replace(free=workdir.ROOM_MARGIN)
    )
    with pytest.raises(SystemExit) as exited:
        train_job.main(job(corpus, cache, tmp_path))
    message = str(exited.value.code)
    assert message.startswith("error: the workdir") and "needs room for two" in message
    assert "\n" not in message and not (tmp_path / "checkpoints").exists()


def test_a_failed_checkpoint_write_ends_the_run_in_one_line_keeping_the_last_good_step(
    corpus, cache, reference, tmp_path, monkeypatch
):
    saves = []
    real_save = checkpoint.save

    def fill_the_disk(*args, **kwargs):
        saves.append(args[1])
        if len(saves) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", fill_the_disk)
    with pytest.raises(SystemExit) as exited:
        train_job.main(job(corpus, cache, tmp_path))
    message = str(exited.value.code)
    assert message.startswith("error: cannot write a checkpoint into") and "\n" not in message
    assert f"(No space left on device); the newest good one, step {saves[1]}, is kept" in message
    assert steps(tmp_path) == saves[:2]
    monkeypatch.setattr(checkpoint, "save", real_save)
    train_job.main(job(corpus, cache, tmp_path))
    assert_equal_to(reference, tmp_path)


def test_a_write_the_file_system_refuses_is_one_line_and_leaves_nothing_half_written(
    corpus, cache, reference, tmp_path
):
    """A real refusal (files limited to 6 kB, smaller than the optimiser state's): Orbax's
    writer threads fail, and each reports it; the run says it once."""
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    limit += "resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))"
    command = f"{limit}; import runpy, sys; sys.argv = ['train', *sys.argv[1:]]; "
    command += "runpy.run_module('experiments.train', run_name='__main__', alter_sys=True)"
    done = subprocess.run(
        [sys.executable, "-c", command, *job(corpus, cache, tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "cannot write a checkpoint into" in line and "(File too large)" in line
    nothing_half_written(tmp_path)
    assert run_cli(job(corpus, cache, tmp_path)).returncode == 0
    assert_equal_to(reference, tmp_path)


# ----------------------------------------------------------------------------- signals


def start(args: list[str]) -> subprocess.Popen:
    """The job in a process group of its own, as a terminal starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(process: subprocess.Popen, prefix: str) -> None:
    for line in process.stdout:
        if line.startswith(prefix):
            return
    raise AssertionError(f"no line starting {prefix!r}: {process.stderr.read()}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_training_saves_and_the_rerun_ends_equal(signum, corpus, cache, tmp_path):
    long = [*job(corpus, cache, tmp_path), "--num-epochs", "60"]
    process = start(long)
    wait_for(process, "epoch 1/60")
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    line = one_line(err)
    assert line.startswith("interrupted at epoch") and "run the same command to resume" in line
    nothing_half_written(tmp_path)
    uninterrupted = tmp_path / "uninterrupted"
    assert run_cli([*job(corpus, cache, uninterrupted), "--num-epochs", "60"]).returncode == 0
    assert run_cli(long).returncode == 0
    assert_equal_to(final_arrays(uninterrupted), tmp_path)


def test_a_second_ctrl_c_stops_at_once_in_one_line(corpus, cache, tmp_path):
    process = start([*job(corpus, cache, tmp_path), "--num-epochs", "60"])
    wait_for(process, "epoch 1/60")
    os.killpg(process.pid, signal.SIGINT)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert one_line(err).startswith("interrupt")
    nothing_half_written(tmp_path)


def test_ctrl_c_during_the_compile_ends_the_run_within_a_second(corpus, tmp_path):
    """The compile runs in a thread of its own, so the signal is seen while XLA works."""
    process = start(job(corpus, tmp_path / "cache", tmp_path / "run"))  # nothing compiled yet
    wait_for(process, "examples:")  # the last line before the program is compiled
    time.sleep(0.2)
    asked = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert time.perf_counter() - asked < 1.5
    assert process.returncode == 130
    assert one_line(err).startswith("interrupt")
    nothing_half_written(tmp_path / "run")


@pytest.fixture(scope="module")
def six_million_tokens(tmp_path_factory) -> Path:
    """A corpus whose encode takes about a second here, and its data stage two."""
    path = tmp_path_factory.mktemp("big") / "big.txt"
    words = np.random.default_rng(0).integers(0, 5000, size=6_000_000)
    path.write_text("\n".join(" ".join(f"w{w}" for w in line) for line in words.reshape(-1, 20)))
    return path


@pytest.mark.parametrize("phase, after", [("encode", 0.3), ("data stage", 1.3)])
def test_ctrl_c_before_training_ends_the_run_within_a_second(
    phase, after, six_million_tokens, tmp_path
):
    cache_dir = tmp_path / "cache"
    process = start(job(six_million_tokens, cache_dir, tmp_path / "run"))
    wait_for(process, "preset:")
    time.sleep(after)
    asked = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole group, encoding workers too
    _, err = process.communicate(timeout=60)
    assert time.perf_counter() - asked < 1.5
    assert process.returncode == 130
    assert one_line(err).startswith("interrupted")
    assert not (tmp_path / "run" / "checkpoints").exists()
    if phase == "encode":
        assert not list(cache_dir.rglob("meta.json"))  # stopped before the encode's end
    assert not [p for p in cache_dir.rglob("*") if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- inputs


SMALL_CORPORA = {
    "empty": "",
    "one word": "a a a a a\n" * 50,
    "two words, each a line": "a\nb\n" * 50,
    "two words, noise impossible": "a b a b a b\n" * 50,
    "three words": "a b c\n" * 2,
    "one huge token": "x" * 5_000_000,
    "only punctuation": "!!! ... ,,, ???\n--- ;;;\n" * 10,
    "rare words only": "\n".join(f"w{i} v{i} u{i}" for i in range(300)),
}


@pytest.mark.parametrize("name", sorted(SMALL_CORPORA))
def test_a_small_or_odd_corpus_is_one_line_and_leaves_no_workdir(name, tmp_path, capsys):
    """Each of these either trains or is refused in one line (exit 1) with no workdir left."""
    path = tmp_path / "corpus.txt"
    path.write_text(SMALL_CORPORA[name])
    flags = ["--tokenizer", "words"] if name == "only punctuation" else []
    flags += ["--preset", "book", "--subsample-t", "1"] if "impossible" in name else []
    flags += ["--min-freq", "5"] if name == "rare words only" else []
    args = ["--corpus", str(path), "--cache-dir", str(tmp_path / "cache")]
    args += ["--workdir", str(tmp_path / "run"), "--no-progress", "--num-epochs", "1", *flags]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        train_job.main(args)
    message = str(exited.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert not (tmp_path / "run").exists()
    assert capsys.readouterr().err == ""


def test_fuzzed_small_corpora_train_or_are_refused_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for trial in range(8):
        distinct = int(rng.integers(0, 4))
        words = [f"w{i}" for i in range(distinct)] or [""]
        lines = [
            " ".join(rng.choice(words, size=int(rng.integers(0, 6))))
            for _ in range(int(rng.integers(0, 40)))
        ]
        path = tmp_path / f"corpus{trial}.txt"
        path.write_text("\n".join(lines))
        run = tmp_path / f"run{trial}"
        args = ["--corpus", str(path), "--cache-dir", str(tmp_path / "cache")]
        args += ["--workdir", str(run), "--no-progress", "--num-epochs", "1"]
        args += ["--min-freq", str(int(rng.integers(1, 3)))]
        try:
            train_job.main(args)
        except SystemExit as exited:
            message = str(exited.code)
            assert message.startswith("error: ") and "\n" not in message, message
            assert not run.exists()
        capsys.readouterr()


# ----------------------------------------------------------------------------- reruns


def test_a_no_op_rerun_leaves_metrics_json_as_it_was(corpus, cache, tmp_path, capsys):
    train_job.main(job(corpus, cache, tmp_path))
    written = (tmp_path / "metrics.json").read_bytes()
    capsys.readouterr()
    train_job.main(job(corpus, cache, tmp_path))
    assert "already trained" in capsys.readouterr().out
    assert (tmp_path / "metrics.json").read_bytes() == written


def test_a_reader_skips_a_step_that_vanishes_under_it(corpus, cache, tmp_path, monkeypatch):
    """A reader beside a training run: the newest step, listed, is deleted before it is read
    (the run keeps only the newest few); the next is read, and nothing is said."""
    interrupted_run(corpus, cache, tmp_path)
    newest, older = steps(tmp_path)[-1], steps(tmp_path)[-2]
    real_restore = checkpoint._restore

    def deleted_first(manager, step, targets):
        if step == newest and (tmp_path / "checkpoints" / str(newest)).exists():
            shutil.rmtree(tmp_path / "checkpoints" / str(newest))
        return real_restore(manager, step, targets)

    monkeypatch.setattr(checkpoint, "_restore", deleted_first)
    manager = checkpoint.open_manager(tmp_path / "checkpoints", read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read, _ = checkpoint.restore_latest(manager, {"params": None})
    assert read == older


def test_a_compiled_program_cut_short_in_the_cache_is_removed_before_it_is_read(tmp_path):
    """JAX writes its cache entries in place: a full disk or a kill leaves half of one."""
    from jax._src.compilation_cache import compress_executable

    from experiments.common import _remove_damaged_programs

    whole = compress_executable(b"a compiled program " * 1000)
    (tmp_path / "xla").mkdir()
    (tmp_path / "xla" / "jit_good-1-cache").write_bytes(whole)
    (tmp_path / "xla" / "jit_cut-2-cache").write_bytes(whole[: len(whole) // 2])
    _remove_damaged_programs(tmp_path / "xla")
    assert sorted(p.name for p in (tmp_path / "xla").iterdir()) == ["jit_good-1-cache"]


def test_a_killed_save_s_temporary_step_is_removed_by_the_next_run(
    corpus, cache, reference, tmp_path
):
    """A save killed midway leaves ``<step>.orbax-checkpoint-tmp``: never read as a step, and
    removed by the next run (which holds the workdir's lock, so it is no one's save)."""
    interrupted_run(corpus, cache, tmp_path)
    directory = tmp_path / "checkpoints"
    newest = steps(tmp_path)[-1]
    shutil.copytree(directory / str(newest), directory / f"{newest + 40}.orbax-checkpoint-tmp")
    train_job.main(job(corpus, cache, tmp_path))
    assert not list(directory.glob("*tmp*"))
    assert_equal_to(reference, tmp_path)


def test_a_corpus_replaced_by_another_of_its_size_and_time_is_noticed(corpus, cache, tmp_path):
    """The old text's encoding is not trained on: the new text is encoded (said), and its
    vocabulary, which differs, is refused in one line saying how."""
    text = tmp_path / "topics.txt"
    shutil.copy(corpus, text)
    interrupted_run(text, cache, tmp_path / "run")
    before = text.stat()
    replaced = tmp_path / "replaced.txt"
    replaced.write_text(text.read_text().replace("a0", "z0"))
    replaced.replace(text)
    os.utime(text, ns=(before.st_atime_ns, before.st_mtime_ns))
    done = run_cli(job(text, cache, tmp_path / "run"))
    assert done.returncode == 1
    stale, refused = done.stderr.strip().splitlines()
    assert stale.startswith("the cached encoding") and "is stale" in stale
    assert refused.startswith("error: the checkpoints in") and "adds 1 word (z0)" in refused
