"""Your own corpus at scale: the encode against gensim's build_vocab, and streamed training's
first step, memory and feed on a small and a large corpus, side by side.

    python -m benchmarks.scale_benchmark [--tokens 100000000 --vocab 1000000]
        [--small-tokens 10000000] [--train-seconds 60] [--out runs/scale_benchmark]

Writes two synthetic corpora (``experiments.make_corpus``: Zipf words over the same --vocab raw
vocabulary, --small-tokens and --tokens long) into a temporary directory, and reads the large
one once so that both sides find it in the page cache. Then, in this process: w2v_jax's encode
of the large corpus (``w2v_jax.data.corpus``, every core, a fresh cache) and gensim's
``Word2Vec.build_vocab`` over ``LineSentence`` (its reader: whitespace tokens, lines split at
10,000), both with min_count = --min-freq; then the encode again, which reads the cache. Then,
for each corpus (its cache written first), a fresh process of the --preset trains on it for
--train-seconds: the time from its launch to the end of its first dispatch (imports, the
cached encode, the blocks' centers, the first window), its peak RSS against the tables and
optimiser state, and the share of training spent waiting for the stream. Writes
``scale_benchmark.json`` and ``README.md`` into --out; ``--out results/scale_benchmark``
refreshes the committed table.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from experiments import make_corpus
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data.corpus import encode
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.presets import PRESETS, preset

GROUPS = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--tokens", type=harness.at_least_one, default=100_000_000)
    parser.add_argument("--vocab", type=harness.at_least_one, default=1_000_000)
    parser.add_argument(
        "--corpus", type=Path, default=None, help="a corpus file to use instead of a synthetic one"
    )
    parser.add_argument("--small-tokens", type=harness.at_least_one, default=10_000_000)
    parser.add_argument("--min-freq", type=harness.at_least_one, default=10)
    parser.add_argument(
        "--preset",
        default="fast",
        choices=sorted(PRESETS),
        help="the training runs' preset (default fast)",
    )
    parser.add_argument("--train-seconds", type=harness.at_least_one, default=60)
    parser.add_argument("--out", type=Path, default=harness.RUNS / "scale_benchmark")
    return parser.parse_args(argv)


def time_encode(corpus: Path, min_freq: int, cache_dir: Path) -> dict:
    start = time.perf_counter()
    encoded = encode(CorpusConfig((str(corpus),)), min_freq, cache_dir)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tokens": len(encoded.corpus.ids),
        "vocab_size": len(encoded.vocab) - 1,
        "from_cache": encoded.from_cache,
    }


def time_gensim_build_vocab(corpus: Path, min_freq: int) -> dict:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    model = Word2Vec(vector_size=100, min_count=min_freq, workers=os.cpu_count())
    start = time.perf_counter()
    model.build_vocab(LineSentence(str(corpus)))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tokens": int(model.corpus_total_words),
        "vocab_size": len(model.wv),
    }


def train_probe(
    corpus: str, cache: str, launched: float, preset_name: str, min_freq: int, seconds: float
) -> dict:
    """In a fresh process: train on a cached corpus for ``seconds`` (one epoch at most) and
    say when the first dispatch ended (since ``launched``), the peak RSS and the time waited
    for the stream."""
    from w2v_jax import run
    from w2v_jax.training import loop

    config = preset(preset_name, num_epochs=1, min_freq=min_freq)
    prepared = run.prepare(config, CorpusConfig((corpus,)), cache_dir=cache)
    marks = []

    def should_stop() -> bool:  # asked after every dispatch
        marks.append(time.time())
        return marks[-1] - marks[0] > seconds

    try:
        trained = run.train(config, data=prepared, progress=False, should_stop=should_stop)
        epoch = trained.history[0]
        vectors = trained.embeddings()
        feed = {
            "feed_seconds": epoch.feed_seconds,
            "epoch_seconds": epoch.seconds,
            "centers_per_second": epoch.centers_per_second,
            "partners_nearest": partners_nearest(vectors),
        }
    except run.TrainingInterrupted:
        feed = {}  # stopped mid-epoch: no epoch statistics
    state = loop.state_bytes(config, len(prepared.vocab))
    return {
        "first_dispatch_seconds": marks[0] - float(launched),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "state_bytes": state["tables"] + state["optimiser"],
        "vocab_size": len(prepared.vocab),
        "centers": prepared.num_centers,
        "blocks": len(prepared.dataset.blocks) - 1,
        "trained_seconds": marks[-1] - marks[0],
        **feed,
    }


def partners_nearest(vectors: Embeddings) -> float:
    """The share of planted partners whose nearest neighbour is the other partner."""
    pairs = [
        pair
        for pair in make_corpus.planted_partners(GROUPS)
        if pair[0] in vectors and pair[1] in vectors
    ]
    hits = [
        vectors.most_similar(word, 1)[0][0] == partner
        for a, b in pairs
        for word, partner in ((a, b), (b, a))
    ]
    return sum(hits) / max(len(hits), 1)


def run_probe(args: argparse.Namespace, corpus: Path, cache: Path, min_freq: int) -> dict:
    encode(CorpusConfig((str(corpus),)), min_freq, cache)  # the cache first
    probe = (str(corpus), str(cache), time.time(), args.preset, min_freq, args.train_seconds)
    return harness.in_fresh_process(train_probe, *probe)[0]


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def report(results: dict) -> str:
    ours, gensim, cached = results["w2v_jax"], results["gensim"], results["w2v_jax_cached"]
    rate = {
        name: run["tokens"] / run["seconds"] for name, run in (("ours", ours), ("gensim", gensim))
    }
    lines = [
        f"`{results['command']}` on {results['machine']}: {results['corpus']} "
        f"({results['corpus_bytes'] / 2**20:,.0f} MiB, {ours['tokens']:,} tokens), "
        f"min_count {results['min_freq']}, one process, the file in the page cache.",
        "",
        "| | seconds | tokens/s | vocabulary | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| w2v_jax encode (count, ids, offsets, cache written) | {ours['seconds']:.1f} | "
        f"{rate['ours'] / 1e6:.2f}M | {ours['vocab_size']:,} | "
        f"{gensim['seconds'] / ours['seconds']:.2f}x gensim |",
        f"| gensim build_vocab (count only) | {gensim['seconds']:.1f} | "
        f"{rate['gensim'] / 1e6:.2f}M | {gensim['vocab_size']:,} | 1x |",
        f"| w2v_jax encode again (the cache, checksums verified) | {cached['seconds']:.2f} | "
        f"| {cached['vocab_size']:,} | |",
        "",
    ]
    training = results.get("training")
    if training:
        lines += [
            f"Training with the {training['preset']} preset in a fresh process on "
            f"{results['device']}, the corpus cached, for at most {results['train_seconds']} s "
            f"(one epoch at most): launch to the end of the first dispatch, peak RSS against the "
            f"tables and optimiser state, and the time spent waiting for the stream.",
            "",
            "| corpus | tokens | min_freq: vocabulary | blocks | first dispatch | peak RSS | "
            "tables + optimiser | waiting for data | planted partners nearest |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in ("small", "large"):
            run = training[name]
            waiting = (
                f"{run['feed_seconds']:.1f} s of {run['epoch_seconds']:.1f} s "
                f"({run['feed_seconds'] / run['epoch_seconds']:.1%})"
                if "feed_seconds" in run
                else "(stopped mid-epoch)"
            )
            partners = (
                f"{run['partners_nearest']:.0%}"
                if "partners_nearest" in run
                else "(stopped mid-epoch)"
            )
            lines.append(
                f"| {name} | {training[name + '_tokens']:,} | "
                f"{run['min_freq']}: {run['vocab_size']:,} | {run['blocks']} | "
                f"{run['first_dispatch_seconds']:.1f} s | "
                f"{run['peak_rss_bytes'] / 2**30:.2f} GiB | "
                f"{run['state_bytes'] / 2**30:.2f} GiB | {waiting} | {partners} |"
            )
        small, large = training["small"], training["large"]
        lines += [
            "",
            f"Peak RSS, large against small: "
            f"{large['peak_rss_bytes'] / small['peak_rss_bytes'] - 1:+.1%}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="w2v_jax_scale_") as work:
        corpus = args.corpus
        if corpus is None:
            corpus = Path(work) / "synthetic.txt"
            print(f"writing {args.tokens:,} tokens of Zipf text to {corpus}", flush=True)
            make_corpus.write_corpus(corpus, args.tokens, args.vocab, groups=GROUPS, seed=0)
        warm_page_cache(corpus)
        results = {
            **harness.header("benchmarks.scale_benchmark", argv),
            "corpus": str(args.corpus)
            if args.corpus
            else f"synthetic, {args.tokens:,} tokens over {args.vocab:,} raw words",
            "corpus_bytes": corpus.stat().st_size,
            "min_freq": args.min_freq,
        }
        cache = Path(work) / "cache"
        results["w2v_jax"] = time_encode(corpus, args.min_freq, cache)
        print(f"w2v_jax encode: {results['w2v_jax']}", flush=True)
        results["gensim"] = time_gensim_build_vocab(corpus, args.min_freq)
        print(f"gensim build_vocab: {results['gensim']}", flush=True)
        results["w2v_jax_cached"] = time_encode(corpus, args.min_freq, cache)
        print(f"w2v_jax from the cache: {results['w2v_jax_cached']}", flush=True)
        small = Path(work) / "small.txt"
        make_corpus.write_corpus(small, args.small_tokens, args.vocab, groups=GROUPS, seed=1)
        results["training"] = {
            "preset": args.preset,
            "small_tokens": args.small_tokens,
            "large_tokens": results["w2v_jax"]["tokens"],
        }
        results["train_seconds"] = args.train_seconds
        # min_freq grows with the corpus, so that both keep about the same vocabulary: the
        # words expected min_freq times in the small corpus.
        scaled = args.min_freq * round(results["w2v_jax"]["tokens"] / args.small_tokens)
        for name, path, min_freq in (("small", small, args.min_freq), ("large", corpus, scaled)):
            results["training"][name] = run_probe(args, path, cache, min_freq)
            results["training"][name]["min_freq"] = min_freq
            print(f"training on the {name} corpus: {results['training'][name]}", flush=True)
    harness.write_results(args.out, "scale_benchmark", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
