"""One timed PTB training run of one system, in a process of its own (so peak memory is its own).

    python -m experiments.side_by_side SYSTEM SEED [--data-dir DIR]

Prints one JSON object: data-stage, compile and training seconds, centers and pairs per second,
peak RSS, and quality (WordSim353 and SimLex-999 Spearman with coverage, Google analogy accuracy
with coverage, top-5 neighbours of five words). SYSTEM is one of SYSTEMS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from w2v_jax import data, pipeline
from w2v_jax.config import preset
from w2v_jax.evaluate import Embeddings

QUERY_WORDS = ("chip", "intel", "stock", "president", "japan")

# Every system sees the same corpus (PTB's training split) and the book's hyperparameters:
# skip-gram, window 5, 5 noise words, t = 1e-4, min count 10, d = 100.
# Besides the book's configuration and the fastest, one system per option that changes the
# mathematics, each alone on top of the book's, to show its effect on quality; the book's
# padded layout, to show what packing saves; and the fast preset for as many epochs as fit in
# gensim's 5-epoch training time on this 2-core machine (the quality race).
SYSTEMS = {
    "gensim, 5 epochs": {"gensim_epochs": 5},
    "gensim, 15 epochs": {"gensim_epochs": 15},
    "w2v_jax, book": {"preset": "book"},
    "w2v_jax, book, padded layout": {"preset": "book", "overrides": {"layout": "padded"}},
    "w2v_jax, book + sparse_sgd": {"preset": "book",
                                   "overrides": {"optimizer": "sparse_sgd", "lr": 1000.0}},
    "w2v_jax, book + shared noise": {"preset": "book",
                                     "overrides": {"noise_sharing": "per_batch"}},
    "w2v_jax, book + shared noise in 16 groups": {
        "preset": "book", "overrides": {"noise_sharing": "per_batch", "noise_groups": 16,
                                        "shared_noise": 32}},
    "w2v_jax, fast": {"preset": "fast"},
    "w2v_jax, fast, 8 epochs": {"preset": "fast", "overrides": {"num_epochs": 8}},
}


def quality(embeddings: Embeddings) -> dict:
    scores = embeddings.evaluate_benchmarks()
    return {
        "wordsim353_spearman": scores["wordsim353"]["spearman"],
        "wordsim353_coverage": scores["wordsim353"]["coverage"],
        "simlex999_spearman": scores["simlex999"]["spearman"],
        "simlex999_coverage": scores["simlex999"]["coverage"],
        "analogy_accuracy": scores["google_analogies"]["accuracy"],
        "analogy_coverage": scores["google_analogies"]["coverage"],
        "neighbours": {w: [n for n, _ in embeddings.most_similar(w, 5)]
                       for w in QUERY_WORDS if w in embeddings},
    }


def run_gensim(epochs: int, seed: int, data_dir: str | None) -> dict:
    """gensim's Word2Vec with all cores and its defaults beyond the book's hyperparameters."""
    import os

    from gensim.models import Word2Vec

    start = time.perf_counter()
    sentences = [line.split() for line in data.read_ptb(data_dir).split("\n") if line.split()]
    model = Word2Vec(sg=1, vector_size=100, window=5, negative=5, sample=1e-4, min_count=10,
                     workers=os.cpu_count(), seed=seed)
    model.build_vocab(sentences)
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    # gensim's "effective words" are its centers after subsampling; it reports them here.
    effective_words, _ = model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
    train_seconds = time.perf_counter() - start
    embeddings = Embeddings(tuple(model.wv.index_to_key), model.wv.vectors)
    return {"data_seconds": data_seconds, "compile_seconds": 0.0,
            "train_seconds": train_seconds, "centers": effective_words, "pairs": None,
            # read + build_vocab + train, evaluation not included
            "end_to_end_seconds": data_seconds + train_seconds, **quality(embeddings)}


def run_w2v_jax(preset_name: str, overrides: dict, seed: int, data_dir: str | None) -> dict:
    config = preset(preset_name, **{**overrides, "seed": seed})
    start = time.perf_counter()
    prepared = pipeline.prepare_data(config, data_dir)
    run = pipeline.train_skipgram(config, prepared, progress=False)
    embeddings = Embeddings(prepared.vocab.tokens, run.params["center_embed"]["embedding"])
    scores = quality(embeddings)
    return {"data_seconds": prepared.seconds, "compile_seconds": run.compile_seconds,
            "train_seconds": sum(stats.seconds for stats in run.history),
            "centers": sum(s.centers for s in run.history),
            "pairs": sum(s.pairs for s in run.history),
            # as the main job: data stage, compile, train, evaluate (imports excluded)
            "end_to_end_seconds": time.perf_counter() - start,
            "final_loss": run.history[-1].loss, **scores}


def run_system(system: str, seed: int, data_dir: str | None) -> dict:
    spec = SYSTEMS[system]
    if "gensim_epochs" in spec:
        result = run_gensim(spec["gensim_epochs"], seed, data_dir)
    else:
        result = run_w2v_jax(spec["preset"], spec.get("overrides", {}), seed, data_dir)
    result["centers_per_second"] = result["centers"] / result["train_seconds"]
    result["pairs_per_second"] = (result["pairs"] / result["train_seconds"]
                                  if result["pairs"] is not None else None)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"system": system, "seed": seed, **result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("seed", type=int)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    print(json.dumps(run_system(args.system, args.seed, args.data_dir)))


if __name__ == "__main__":
    main()
