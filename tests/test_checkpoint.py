"""Checkpoints: save -> restore equality, exact resume, damaged steps, refused mismatches."""

import json
import os
import shutil
import warnings

import jax
import numpy as np
import pytest

from tests.helpers import (
    fresh_state,
    leaves_equal,
    prepare_text,
    smoke_config,
    to_pairs,
    topic_config,
    topic_corpus,
)
from w2v_jax import feed
from w2v_jax.compat import MOVED
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.run import Hook, Moment, train
from w2v_jax.sections import SECTIONS
from w2v_jax.training import checkpoint, step


@pytest.fixture(scope="module")
def topic_text():
    return topic_corpus(sentences=1500)[0]


def train_topic(text, workdir, restart=False, hooks=(), **overrides):
    config = topic_config(**overrides)
    return train(
        config,
        data=prepare_text(config, text),
        evaluation=None,
        progress=False,
        workdir=workdir,
        restart=restart,
        hooks=hooks,
    )


def test_save_restore_equality(tmp_path):
    config = smoke_config()
    state, optimizer = fresh_state(config, 30, seed=1)
    state, _ = jax.jit(step.make_train_step(config, optimizer))(
        state,
        to_pairs(
            {
                "centers": np.ones((4, 1), np.int32),
                "contexts_negatives": np.full((4, 60), 2, np.int32),
                "mask": np.ones((4, 60), bool),
                "labels": np.zeros((4, 60), bool),
            }
        ),
    )
    vocab = {"tokens": ["<unk>", "a"], "counts": [3, 4]}
    manager = checkpoint.open_manager(tmp_path, max_to_keep=2)
    checkpoint.save(
        manager, 1, state.params, state.opt_state, {"epoch": 1}, config.to_dict(), vocab
    )
    manager.wait_until_finished()
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
        {"params": state.params, "opt_state": state.opt_state},
    )
    saved_step, restored = checkpoint.restore_latest(
        checkpoint.open_manager(tmp_path, read_only=True),
        {**abstract, "progress": None, "config": None, "vocab": None},
    )
    assert saved_step == 1
    assert leaves_equal(restored["params"], state.params)
    assert leaves_equal(restored["opt_state"], state.opt_state)
    assert restored["config"] == config.to_dict() and restored["vocab"] == vocab
    assert restored["progress"] == {"epoch": 1}


def test_a_resumed_run_compiles_the_uninterrupted_runs_program(tmp_path, topic_text, monkeypatch):
    """The packed capacity of a resumed run is the uninterrupted run's (a GPU sums another
    capacity in another order), even where its own epochs alone would need less."""
    real = feed.KeptGroup.most_live

    def more_for_more_epochs(self):
        return real(self) + 256 * self.config.num_epochs

    monkeypatch.setattr(feed.KeptGroup, "most_live", more_for_more_epochs)
    train_topic(topic_text, tmp_path / "straight")
    train_topic(topic_text, tmp_path / "resumed", num_epochs=1)
    train_topic(topic_text, tmp_path / "resumed")
    layouts = [saved_progress(tmp_path / name)["layout"] for name in ("straight", "resumed")]
    capacities = [layout["capacity"] for layout in layouts]
    assert capacities[0] == capacities[1] > 0


def test_a_checkpoint_of_an_earlier_release_resumes(tmp_path, topic_text, monkeypatch):
    """Progress saved with its epochs numbered from 1 and the packed capacity as a field of its
    own (before the pair layout was one field), and a flat config (before its sections),
    resumes: its epochs counted from 0, its capacity kept, its settings read at their paths,
    the run the uninterrupted one."""
    real = checkpoint.save

    def as_saved_before(manager, step, params, opt_state, progress, config, vocab):
        flat = {name: value for name, value in config.items() if name not in SECTIONS}
        for name, path in MOVED.items():
            section, setting = path.split(".")
            flat[name] = config[section][setting]
        config = flat
        progress["capacity"] = progress.pop("layout")["capacity"]
        for run in progress["epochs"]:
            for stats in run:
                stats["epoch"] += 1
        return real(manager, step, params, opt_state, progress, config, vocab)

    monkeypatch.setattr(checkpoint, "save", as_saved_before)

    class Killed(Exception):
        pass

    def killed(moment: Moment) -> None:  # after the first epoch's checkpoint
        raise Killed

    with pytest.raises(Killed):
        train_topic(topic_text, tmp_path / "resumed", hooks=[Hook(killed, at_epoch_end=True)])
    monkeypatch.setattr(checkpoint, "save", real)
    resumed = train_topic(topic_text, tmp_path / "resumed")
    straight = train_topic(topic_text, tmp_path / "straight")
    assert resumed.resumed_from == resumed.history[0].step
    assert [stats.epoch for stats in resumed.history] == [0, 1, 2]
    assert [(s.epoch, s.loss, s.step) for s in resumed.history] == [
        (s.epoch, s.loss, s.step) for s in straight.history
    ]
    assert leaves_equal(resumed.params, straight.params)


def saved_progress(workdir):
    manager = checkpoint.open_manager(workdir / "checkpoints", read_only=True)
    return checkpoint.restore_latest(manager, {"progress": None})[1]["progress"]


def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path, topic_text):
    straight = train_topic(topic_text, tmp_path / "straight", **{"execution.checkpoint_every": 5})

    class Interrupted(Exception):
        pass

    saved = []

    def die_after_the_fourth_checkpoint(moment: Moment) -> None:
        saved.append(moment.step)  # a hook runs after the checkpoint of its step
        if len(saved) == 4:  # mid-way through the second epoch
            raise Interrupted

    with pytest.raises(Interrupted):
        train_topic(
            topic_text,
            tmp_path / "resumed",
            hooks=[Hook(die_after_the_fourth_checkpoint, every=5)],
            **{"execution.checkpoint_every": 5},
        )
    resumed = train_topic(topic_text, tmp_path / "resumed", **{"execution.checkpoint_every": 5})
    assert resumed.resumed_from == saved[-1] and saved[-1] % 5 == 0
    assert leaves_equal(straight.state.params, resumed.state.params)
    np.testing.assert_allclose(
        [s.loss for s in resumed.history], [s.loss for s in straight.history], rtol=1e-9
    )


def test_restart_starts_over_and_checkpoints_are_kept_bounded(tmp_path, topic_text):
    run = train_topic(
        topic_text, tmp_path, **{"execution.checkpoint_every": 4, "execution.max_to_keep": 2}
    )
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert len(steps) == 2 and steps[-1] == int(run.state.step)
    again = train_topic(topic_text, tmp_path, restart=True, num_epochs=1)
    assert again.resumed_from is None and len(again.history) == 1


@pytest.mark.parametrize("field, value", [("embed_size", 8), ("optimizer.lr", 0.5), ("seed", 3)])
def test_checkpoint_of_another_config_is_refused(tmp_path, topic_text, field, value):
    train_topic(topic_text, tmp_path, num_epochs=1)
    with pytest.raises(checkpoint.CheckpointError, match=f"{field}=.*restart=True"):
        train_topic(topic_text, tmp_path, **{field: value})


def test_checkpoint_of_another_vocabulary_is_refused(tmp_path, topic_text):
    train_topic(topic_text, tmp_path, num_epochs=1)
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"another vocabulary \(this corpus adds 1 word \(z0\), lacks 1 word \(a0\)\)",
    ):
        train_topic(topic_text.replace("a0", "z0"), tmp_path)
    swapped = topic_text.replace("a1", "@").replace("f1x0", "a1").replace("@", "f1x0")
    with pytest.raises(checkpoint.CheckpointError, match="the same 43 words with other counts"):
        train_topic(swapped, tmp_path)


def damage(step_dir):
    for root, _, files in os.walk(step_dir / "params"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"damaged")


def test_damaged_or_incomplete_newest_step_falls_back_with_a_warning(tmp_path, topic_text):
    run = train_topic(topic_text, tmp_path, num_epochs=2)
    directory = tmp_path / "checkpoints"
    newest, older = sorted(
        (int(p.name) for p in directory.iterdir() if p.name.isdigit()), reverse=True
    )
    # An interrupted save leaves a temporary directory that is never taken for a step.
    shutil.copytree(directory / str(newest), directory / f"{newest + 50}.orbax-checkpoint-tmp-1")
    damage(directory / str(newest))
    with pytest.warns(UserWarning, match=f"step {newest} .* cannot be read"):
        embeddings = Embeddings.from_checkpoint(tmp_path)
    older_params = checkpoint.restore_latest(
        checkpoint.open_manager(directory, read_only=True), {"params": None}, step=older
    )[1]
    np.testing.assert_array_equal(embeddings.vectors, older_params["params"]["center"])
    assert not np.array_equal(embeddings.vectors, run.params["center"])
    damage(directory / str(older))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(checkpoint.CheckpointError, match="no complete checkpoint"):
            Embeddings.from_checkpoint(tmp_path)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        Embeddings.from_checkpoint(tmp_path / "nothing-here")


def test_the_entry_scripts_drop_only_the_reports_of_a_failed_read_s_other_tasks(caplog):
    """After a damaged step's read or a refused write fails (said in one line), its other array
    tasks' failures reach asyncio's logger when collected; those, and only those, are
    dropped."""
    import logging

    from w2v_jax.training.checkpoint import drop_closed_loop_reports

    drop_closed_loop_reports()
    asyncio_logger = logging.getLogger("asyncio")
    unretrieved = (
        "Task exception was never retrieved\nfuture: <Task finished name='Task-34' "
        "coro=<async_deserialize() done, defined at .../serialization.py:394>>"
    )
    # A failed write's, held by the gather of its array writes.
    gathered = (
        "_GatheringFuture exception was never retrieved\nfuture: <_GatheringFuture finished "
        "exception=ValueError('OUT_OF_RANGE: Error writing \"center/0.0\" in OCDBT database')>"
    )
    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio_logger.error(unretrieved)
        asyncio_logger.error(gathered)
        asyncio_logger.error("Task exception was never retrieved\nfuture: <Task coro=<mine()>>")
    assert [r.getMessage() for r in caplog.records] == [
        "Task exception was never retrieved\nfuture: <Task coro=<mine()>>"
    ]


def test_a_checksum_sees_any_changed_element_and_not_the_padding_rows():
    """The same figures on the host and on the devices; one ulp anywhere changes them; zero
    rows appended (another mesh's padding) do not."""
    from w2v_jax.training.checksums import array_checksums

    table = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    figures = array_checksums({"t": table})
    assert figures == array_checksums({"t": jax.numpy.asarray(table)})
    padded = np.concatenate([table, np.zeros((5, 6), np.float32)])
    assert array_checksums({"t": padded}) == figures
    rng = np.random.default_rng(1)
    for _ in range(20):
        changed = table.copy()
        row, column = rng.integers(40), rng.integers(6)
        changed[row, column] = np.nextafter(changed[row, column], np.inf)
        assert array_checksums({"t": changed})["t"][:2] != figures["t"][:2]
    swapped = table.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # the same values elsewhere
    assert array_checksums({"t": swapped})["t"][:2] != figures["t"][:2]
    table[3, 2] = np.nan
    assert array_checksums({"t": table})["t"][2] is False


def test_a_host_arrays_checksum_summed_a_block_of_rows_at_a_time_is_the_devices(monkeypatch):
    """A checkpoint read into host memory is summed a block of rows at a time (never copied
    whole to a device): the same figures as the whole array's on a device, for every dtype and
    rank a checkpoint holds, and a non-finite value in any block is seen."""
    from w2v_jax.training import checksums

    monkeypatch.setattr(checksums, "_HOST_BLOCK_BYTES", 1000)  # blocks of a few rows
    rng = np.random.default_rng(2)
    tree = {
        "table": rng.normal(size=(1001, 7)).astype(np.float32),
        "runs": rng.normal(size=(53, 3, 4)).astype(np.float32),
        "count": rng.integers(0, 1 << 30, (301,)).astype(np.int32),
        "step": np.int32(12),
        "flags": rng.integers(0, 2, (77,)).astype(bool),
    }
    figures = checksums.array_checksums(tree)
    assert figures == checksums.array_checksums(jax.tree.map(jax.numpy.asarray, tree))
    tree["table"][999, 6] = np.inf  # in the last block
    assert checksums.array_checksums(tree)["table"][2] is False


def step_arrays(directory, step):
    """The params and optimiser state of ``step``, as saved, in host memory."""
    manager = checkpoint.open_manager(directory, read_only=True)
    return checkpoint.restore_latest(manager, {"params": None, "opt_state": None}, step=step)[1]


def test_bytes_flipped_anywhere_in_a_steps_array_files_are_never_served(tmp_path, topic_text):
    """Random bytes flipped at random places in each array file of a step (parameters and
    optimiser state): the step is refused (unreadable, or failing its checksums), or what is
    read is exactly what was saved (the bytes changed were ones no read uses)."""
    train_topic(topic_text, tmp_path, num_epochs=1)
    directory = tmp_path / "checkpoints"
    step = max(int(p.name) for p in directory.iterdir() if p.name.isdigit())
    pristine = tmp_path / "pristine"
    shutil.copytree(directory / str(step), pristine)
    saved = jax.tree.leaves(step_arrays(directory, step))
    files = sorted(
        p.relative_to(pristine)
        for item in checkpoint.ARRAY_ITEMS
        for p in (pristine / item).rglob("*")
        if p.is_file() and p.parent.name == "d"
    )
    rng = np.random.default_rng(0)
    refused = {}
    for relative in files:
        for trial in range(3):
            shutil.rmtree(directory / str(step))
            shutil.copytree(pristine, directory / str(step))
            path = directory / str(step) / relative
            data = np.frombuffer(path.read_bytes(), np.uint8).copy()
            where = rng.integers(len(data), size=1 if trial == 0 else 16)
            data[where] ^= rng.integers(1, 256, size=len(where)).astype(np.uint8)
            path.write_bytes(data.tobytes())
            try:
                read = jax.tree.leaves(step_arrays(directory, step))
            except checkpoint.CheckpointError:
                refused[relative] = refused.get(relative, 0) + 1
                continue
            assert all(np.array_equal(a, b) for a, b in zip(read, saved)), relative
    # The files holding the tables' values are refused (one flipped byte may land in a
    # header field no read uses; sixteen do not).
    values = [f for f in files if (pristine / f).stat().st_size > 2000]
    assert values and all(refused.get(f, 0) >= 2 for f in values)


def test_a_step_of_non_finite_parameters_is_set_aside_and_the_run_resumes_before_it(
    tmp_path, topic_text
):
    config = smoke_config()
    state, _ = fresh_state(config, 30, seed=1)
    manager = checkpoint.open_manager(tmp_path, max_to_keep=3)
    vocab = {"tokens": ["<unk>", "a"], "counts": [3, 4]}
    good = state.params
    bad = jax.tree.map(lambda x: x.at[0, 0].set(np.nan), state.params)
    for number, params in ((1, good), (2, bad)):
        checkpoint.save(manager, number, params, (), {"epoch": 1}, config.to_dict(), vocab)
    manager.wait_until_finished()
    with pytest.warns(UserWarning, match="step 2 .* non-finite values"):
        number, restored = checkpoint.restore_latest(
            manager, {"params": None}, set_aside=tmp_path / "damaged"
        )
    assert number == 1 and leaves_equal(restored["params"], good)
    assert (tmp_path / "damaged" / "step_2").is_dir() and manager.all_steps() == [1]


def test_a_step_saved_before_checksums_is_read_and_checked_for_finite_values(tmp_path):
    config = smoke_config()
    state, _ = fresh_state(config, 30, seed=1)
    manager = checkpoint.open_manager(tmp_path, max_to_keep=3)
    vocab = {"tokens": ["<unk>", "a"], "counts": [3, 4]}
    bad = jax.tree.map(lambda x: x.at[0, 0].set(np.inf), state.params)
    for number, params in ((1, state.params), (2, bad)):
        checkpoint.save(manager, number, params, (), {"epoch": 1}, config.to_dict(), vocab)
    manager.wait_until_finished()
    for number in (1, 2):
        shutil.rmtree(tmp_path / str(number) / "checksums")  # as an older w2v_jax saved it
    reader = checkpoint.open_manager(tmp_path, read_only=True)
    assert leaves_equal(
        checkpoint.restore_latest(reader, {"params": None}, step=1)[1]["params"], state.params
    )
    with pytest.raises(checkpoint.CheckpointError, match="step 2 .* non-finite values"):
        checkpoint.restore_latest(reader, {"params": None}, step=2)


def test_a_step_saved_under_the_tables_first_names_is_read_and_not_trained_on(tmp_path, topic_text):
    """Checkpoints saved before the tables were named {"center", "context"} (a linen module's
    {"center_embed": {"embedding": ...}, ...}, optimiser state keyed alike): their vectors
    are read, checked by their checksums; a run refuses to train on from them in one line."""
    run = train_topic(topic_text, tmp_path / "now")
    saved = {name: {"embedding": run.params[name]} for name in ("center", "context")}
    first = {f"{name}_embed": table for name, table in saved.items()}
    moments = {f"{name}_embed": {"mu": run.params[name]} for name in ("center", "context")}
    config = {**run.config.to_dict(), "corpus": run.data.corpus.to_dict()}
    config.pop("objective")  # nor did the config have this field
    vocab = json.loads(run.vocab.to_json())
    directory = tmp_path / "old" / "checkpoints"
    manager = checkpoint.open_manager(directory, max_to_keep=3)
    now = checkpoint.open_manager(tmp_path / "now" / "checkpoints", read_only=True)
    number, progress = checkpoint.restore_latest(now, {"progress": None})
    checkpoint.save(manager, number, first, (moments,), progress["progress"], config, vocab)
    manager.wait_until_finished()
    embeddings = Embeddings.from_checkpoint(tmp_path / "old")
    assert np.array_equal(embeddings.vectors, run.params["center"])
    assert np.array_equal(
        Embeddings.from_checkpoint(directory, table="sum").vectors,
        sum(np.asarray(run.params[name]) for name in ("center", "context")),
    )
    reader = checkpoint.open_manager(directory, read_only=True)
    opt_state = checkpoint.restore_latest(reader, {"opt_state": None})[1]["opt_state"]
    assert np.array_equal(opt_state[0]["context"]["mu"], run.params["context"])
    with pytest.raises(checkpoint.CheckpointError, match="earlier w2v_jax .* start over"):
        train_topic(topic_text, tmp_path / "old")
    assert (directory / str(number)).is_dir(), "the step is kept"
