"""One timed training run of one system, in a process of its own, as a user would run it.

    python -m benchmarks.side_by_side SYSTEM SEED [--data-dir DIR] [--ptb-repeats N]
        [--epochs E]

Prints one JSON object: the whole process's wall time, data-stage, compile and training
seconds, centers and pairs per second, peak RSS, and quality (WordSim353 and SimLex-999
Spearman with coverage, Google analogy accuracy with coverage, top-5 neighbours of five words).
SYSTEM is one of SYSTEMS. A w2v_jax system is the main job (``python -m
experiments.ptb_skipgram`` with the system's ``flags``) in a child process; gensim trains in
another.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from w2v_jax.evaluation import measures

QUERY_WORDS = ("chip", "intel", "stock", "president", "japan")

# Every system sees the same corpus (PTB's training split, or it repeated) and the book's
# hyperparameters: skip-gram, window 5, 5 noise words, t = 1e-4, min count 10, d = 100.
# Besides the book's configuration, one system per option that changes the mathematics, each
# alone on top of the book's, to show its effect on quality; the book's padded layout, to show
# what packing saves; the presets; and the quality race (QUALITY_RACE_SYSTEM).
SYSTEMS = {
    "gensim, 5 epochs": {"gensim_epochs": 5},
    "gensim, 15 epochs": {"gensim_epochs": 15},
    "w2v_jax, book": {"flags": ["--preset", "book"]},
    "w2v_jax, book, padded layout": {"flags": ["--preset", "book", "--execution.layout", "padded"]},
    "w2v_jax, book + word2vec subsampling": {
        "flags": ["--preset", "book", "--subsample", "word2vec"]
    },
    "w2v_jax, book + lazy_adam": {"flags": ["--preset", "book", "--optimizer.name", "lazy_adam"]},
    "w2v_jax, book + shared noise in 16 groups": {
        "flags": [
            "--preset",
            "book",
            "--noise.sharing",
            "per_batch",
            "--noise.groups",
            "16",
            "--noise.shared",
            "32",
        ]
    },
    "w2v_jax, fast": {"flags": ["--preset", "fast"]},
    "w2v_jax, gpu": {"flags": ["--preset", "gpu"]},
    "w2v_jax, best": {"flags": ["--preset", "best"]},
    "w2v_jax, fast, 3 epochs": {"flags": ["--preset", "fast", "--num-epochs", "3"]},
}
QUALITY_RACE_SYSTEM = "w2v_jax, fast, 3 epochs"
"""The w2v_jax system run against gensim's 5-epoch wall time and 15-epoch quality (the fast
preset for as many epochs as keep its whole process within gensim's on this 2-core machine)."""
# Larger corpora than PTB (benchmarks.scale): the gpu preset at 4x its batch, with 2x its rate.
LARGE_BATCH_FLAGS = [
    "--preset",
    "gpu",
    "--batch-size",
    "65536",
    "--noise.groups",
    "256",
    "--optimizer.lr",
    "0.4",
]
SCALE_SYSTEMS = {"w2v_jax, gpu, batch 65536": {"flags": LARGE_BATCH_FLAGS}}


def quality(embeddings) -> dict:
    neighbours = {
        w: [n for n, _ in embeddings.most_similar(w, 5)] for w in QUERY_WORDS if w in embeddings
    }
    return scores_of(embeddings.evaluate_benchmarks(), neighbours)


def scores_of(scores: dict, neighbours: dict) -> dict:
    """The flat quality measures of the evaluator's ``scores``, and the neighbours."""
    return {**measures.quality(scores), "neighbours": neighbours}


def ptb_sentences(data_dir: str | None, repeats: int) -> list[list[str]]:
    from w2v_jax.data.ptb import read_ptb  # numpy only: no JAX in gensim's process

    sentences = [line.split() for line in read_ptb(data_dir).split("\n") if line.split()]
    return sentences * repeats


def run_gensim(epochs: int, seed: int, data_dir: str | None, repeats: int) -> dict:
    """gensim's Word2Vec with all cores and its defaults beyond the book's hyperparameters.
    Called in the gensim child process; its evaluation is timed apart, so that the process's
    time to trained vectors can be told from the evaluator's import and work."""
    from gensim.models import Word2Vec

    start = time.perf_counter()
    sentences = ptb_sentences(data_dir, repeats)
    model = Word2Vec(
        sg=1,
        vector_size=100,
        window=5,
        negative=5,
        sample=1e-4,
        min_count=10,
        workers=os.cpu_count(),
        seed=seed,
    )
    model.build_vocab(sentences)
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    # gensim's "effective words" are its centers after subsampling; it reports them here.
    effective_words, _ = model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
    train_seconds = time.perf_counter() - start
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before evaluating
    start = time.perf_counter()
    from w2v_jax.evaluation.evaluate import Embeddings

    scores = quality(Embeddings(tuple(model.wv.index_to_key), model.wv.vectors))
    return {
        "data_seconds": data_seconds,
        "compile_seconds": 0.0,
        "train_seconds": train_seconds,
        "centers": effective_words,
        "pairs": None,
        "peak_rss_mib": peak_rss_mib,
        "evaluation_seconds": time.perf_counter() - start,
        **scores,
    }


def run_w2v_jax(flags: list[str], seed: int, data_dir: str | None, repeats: int) -> dict:
    """The main job with ``flags`` in a child process, timed from outside; its metrics.json
    gives the parts."""
    with tempfile.TemporaryDirectory() as workdir:
        command = [
            sys.executable,
            "-m",
            "experiments.ptb_skipgram",
            *flags,
            "--seed",
            str(seed),
            "--workdir",
            workdir,
            "--no-progress",
            "--ptb-repeats",
            str(repeats),
            "--query",
            *QUERY_WORDS,
        ]
        if data_dir:
            command += ["--data-dir", data_dir]
        process_seconds, rss = _run_child(command)
        metrics = json.loads((Path(workdir) / "metrics.json").read_text())
    epochs = metrics["epochs"]
    return {
        "flags": flags,
        "process_seconds": process_seconds,
        "peak_rss_mib": rss,
        "data_seconds": metrics["data_seconds"],
        "compile_seconds": metrics["compile_seconds"],
        "train_seconds": sum(e["seconds"] for e in epochs),
        "centers": sum(e["centers"] for e in epochs),
        "pairs": sum(e["pairs"] for e in epochs),
        "final_loss": metrics["final_loss"],
        "evaluation_seconds": metrics["evaluation_seconds"],
        **scores_of(
            metrics["evaluation"],
            {w: [n for n, _ in pairs] for w, pairs in metrics["neighbours"].items()},
        ),
    }


def _run_child(command: list[str]) -> tuple[float, float]:
    """Run ``command``; its wall time and peak RSS in MiB (this process runs one child, so the
    children's peak is its own)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_system(
    system: str, seed: int, data_dir: str | None, repeats: int = 1, epochs: int | None = None
) -> dict:
    """One run of ``system``; ``epochs`` overrides its number of epochs."""
    spec = {**SYSTEMS, **SCALE_SYSTEMS}[system]
    if "gensim_epochs" in spec:
        result, wall, _ = harness.in_fresh_process(
            run_gensim, epochs or spec["gensim_epochs"], seed, data_dir, repeats
        )
        # A gensim script's time to trained vectors: its evaluation is not a gensim cost.
        result["process_seconds"] = wall - result["evaluation_seconds"]
    else:
        flags = spec["flags"] + (["--num-epochs", str(epochs)] if epochs else [])
        result = run_w2v_jax(flags, seed, data_dir, repeats)
    result["centers_per_second"] = result["centers"] / result["train_seconds"]
    result["pairs_per_second"] = (
        result["pairs"] / result["train_seconds"] if result["pairs"] is not None else None
    )
    return {"system": system, "seed": seed, "ptb_repeats": repeats, **result}


def main(argv: list[str] | None = None) -> None:
    parser = harness.command_line(__doc__)
    parser.add_argument("system")
    parser.add_argument("seed", type=int)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--ptb-repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.system not in {**SYSTEMS, **SCALE_SYSTEMS}:
        parser.error(
            f"unknown system {args.system!r}; systems: {sorted({**SYSTEMS, **SCALE_SYSTEMS})}"
        )
    print(
        json.dumps(run_system(args.system, args.seed, args.data_dir, args.ptb_repeats, args.epochs))
    )


if __name__ == "__main__":
    main()
