"""The measurements: ``python -m benchmarks.<name>``, each writing ``results/<name>/`` when
pointed there (``--out results/<name>``), through one harness (``benchmarks.harness``)."""
