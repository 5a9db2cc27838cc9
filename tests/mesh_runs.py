"""Runs on meshes of fake CPU devices, for tests/test_parallel.py: started there in a process
of its own, since JAX reads the device count once, when it starts.

    python -m tests.mesh_runs OUT_DIR

writes OUT_DIR/params.npz (each run's trimmed tables, "<run>/<table>") and
OUT_DIR/runs.json (each run's shard shapes per state leaf, losses, vocabulary size).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

from tests.helpers import docs_python, prepare_text, smoke_config, topic_config, topic_corpus
from w2v_jax import objectives, parallel
from w2v_jax.run import train
from w2v_jax.training import optim, step

MESHES = ("data=1,vocab=1", "data=4", "vocab=4", "data=2,vocab=2")
# Runs: name -> config overrides. Every optimiser family on every mesh would be slow; these
# cover dense Adam and lazy Adam on all four, and shared noise with row-wise Adagrad, the
# padded layout and row-sparse SGD on the 2x2 mesh against one device, a streamed corpus, and
# CBOW.
RUNS = {
    **{f"adam {mesh}": {"optimizer.name": "adam", "execution.mesh": mesh} for mesh in MESHES},
    **{
        f"lazy_adam {mesh}": {"optimizer.name": "lazy_adam", "execution.mesh": mesh}
        for mesh in MESHES
    },
    **{
        f"shared {mesh}": {
            "optimizer.name": "rowwise_adagrad",
            "optimizer.lr": 0.2,
            "noise.sharing": "per_batch",
            "noise.shared": 8,
            "noise.groups": 2,
            "execution.mesh": mesh,
        }
        for mesh in ("data=1,vocab=1", "data=2,vocab=2")
    },
    **{
        f"padded {mesh}": {
            "optimizer.name": "lazy_adam",
            "execution.layout": "padded",
            "execution.mesh": mesh,
        }
        for mesh in ("data=1,vocab=1", "data=2,vocab=2")
    },
    **{
        f"sparse_sgd {mesh}": {
            "optimizer.name": "sparse_sgd",
            "optimizer.lr": 20.0,
            "execution.mesh": mesh,
        }
        for mesh in ("data=1,vocab=1", "data=2,vocab=2")
    },
    # Streamed: 6 blocks of 1,000 tokens in 2 windows of 3, dealt to the data axis (data=4:
    # a shard without blocks in every window).
    **{
        f"streamed {mesh}": dict(
            block_tokens=1000,
            group_blocks=3,
            num_epochs=2,
            **{"optimizer.name": "lazy_adam", "execution.mesh": mesh},
        )
        for mesh in ("data=1,vocab=1", "data=4", "data=2,vocab=2")
    },
    # CBOW: its rows drawn on the device for a streamed corpus, noise words in the rows and
    # shared.
    **{
        f"cbow {mesh}": dict(
            objective="cbow",
            block_tokens=1000,
            group_blocks=3,
            **{"optimizer.name": "lazy_adam", "execution.mesh": mesh},
        )
        for mesh in ("data=1,vocab=1", "data=4", "data=2,vocab=2")
    },
    **{
        f"cbow_shared {mesh}": dict(
            objective="cbow",
            **{
                "noise.sharing": "per_batch",
                "noise.shared": 8,
                "noise.groups": 2,
                "execution.mesh": mesh,
            },
        )
        for mesh in ("data=1,vocab=1", "data=2,vocab=2")
    },
}


def main(out: Path) -> None:
    assert jax.device_count() == 4, "start with parallel.fake_cpu_devices(4)"
    text = topic_corpus(sentences=1500)[0]
    params, runs = {}, {}

    def record(name, run):
        for table, leaf in run.params.items():
            params[f"{name}/{table}"] = np.asarray(leaf)
        runs[name] = {
            "loss": run.history[-1].loss if run.history else None,
            "vocab": len(run.vocab),
            "shards": shard_shapes(run.state),
        }

    data = {}  # one data stage per data_key
    for name, overrides in RUNS.items():
        config = topic_config(**{"num_epochs": 1, **overrides})
        if config.data_key() not in data:
            data[config.data_key()] = prepare_text(config, text)
        run = train(config, data=data[config.data_key()], evaluation=None, progress=False)
        record(name, run)
        runs[name]["centers"] = sum(stats.centers for stats in run.history)
        runs[name]["pairs"] = sum(stats.pairs for stats in run.history)

    # An objective with a table of its own (docs/objectives.md's BiasedSkipGram, a bias per
    # word) in skip-gram's place, its rows streamed and drawn on the device.
    plain = objectives.REGISTRY["skipgram"]
    objectives.REGISTRY["skipgram"] = docs_python("objectives.md", "class BiasedSkipGram")[
        "BiasedSkipGram"
    ]
    for mesh in ("data=1,vocab=1", "vocab=4", "data=2,vocab=2"):
        overrides = {"optimizer.name": "lazy_adam", "execution.mesh": mesh}
        config = topic_config(num_epochs=1, block_tokens=1000, group_blocks=3, **overrides)
        if config.data_key() not in data:
            data[config.data_key()] = prepare_text(config, text)
        prepared = data[config.data_key()]
        record(f"biased {mesh}", train(config, data=prepared, evaluation=None, progress=False))
    objectives.REGISTRY["skipgram"] = plain

    # A checkpoint written on 4 devices (vocab=4: 44 rows for 43 words) read on 1 and 2x2.
    work = out / "work"
    config = topic_config(
        num_epochs=1, **{"optimizer.name": "lazy_adam", "execution.mesh": "vocab=4"}
    )
    prepared = data[config.data_key()]
    record(
        "saved vocab=4",
        train(config, data=prepared, evaluation=None, progress=False, workdir=work / "four"),
    )
    for mesh in ("data=1,vocab=1", "data=2,vocab=2"):
        workdir = work / mesh
        shutil.copytree(work / "four", workdir)
        # num_epochs=1: the run is done, so this only restores it onto the mesh.
        restored = train(
            config.replace(**{"execution.mesh": mesh}),
            data=prepared,
            evaluation=None,
            progress=False,
            workdir=workdir,
        )
        record(f"restored {mesh}", restored)
        record(
            f"continued {mesh}",
            train(
                config.replace(num_epochs=2, **{"execution.mesh": mesh}),
                data=prepared,
                evaluation=None,
                progress=False,
                workdir=workdir,
            ),
        )
    for mesh in ("data=1,vocab=1", "vocab=4"):
        record(
            f"straight {mesh}",
            train(
                config.replace(num_epochs=2, **{"execution.mesh": mesh}),
                data=prepared,
                evaluation=None,
                progress=False,
            ),
        )
    runs["init"] = init_memory()
    np.savez(out / "params.npz", **params)
    (out / "runs.json").write_text(json.dumps(runs, indent=1))


def init_memory(vocab_size: int = 4000, embed_size: int = 64) -> dict:
    """The program creating a lazy Adam state, on one device and split over vocab=4: each
    device's output and temporary bytes, and whether any array of the program has the whole
    vocabulary's rows."""
    config = smoke_config(embed_size=embed_size, **{"optimizer.name": "lazy_adam"})
    found = {}
    for mesh in ("data=1,vocab=1", "vocab=4"):
        program = step.state_initializer(
            config,
            vocab_size,
            jax.random.key(0),
            optim.make(config),
            placement=parallel.Placement.from_spec(mesh),
        )
        compiled = program.lower().compile()
        memory = compiled.memory_analysis()
        found[mesh] = {
            "output": memory.output_size_in_bytes,
            "temp": memory.temp_size_in_bytes,
            "whole_rows": f"[{vocab_size}," in compiled.as_text()
            or f"[{vocab_size}]" in compiled.as_text(),
        }
    return found


def shard_shapes(state) -> dict[str, list[list[int]]]:
    """Each state leaf's shard shape on each device, by the leaf's path."""
    leaves = jax.tree_util.tree_leaves_with_path(state)
    return {
        jax.tree_util.keystr(path): [list(shard.data.shape) for shard in leaf.addressable_shards]
        for path, leaf in leaves
        if isinstance(leaf, jax.Array)
    }


if __name__ == "__main__":
    main(Path(sys.argv[1]))
