"""A run's vectors judged: ``evaluate`` (``Embeddings``: neighbours, analogies and the
benchmarks, from a checkpoint or a run), ``explore`` (plots), ``report`` (a finished run's
``metrics.json`` and evaluation) and ``measures`` (the flat measures summaries compare)."""
