"""Float32 tolerances for comparisons whose two sides add the same numbers in another order.

Stated once here, per platform. Two programs that compute the same sums in a different order
(stacked against single runs, packed against padded rows) differ by float32 rounding: each
addition rounds at about 6e-8 relative, and a parameter is a sum of thousands of updates.

- CPU: XLA's CPU reductions and scatter-adds run in a fixed order, so the same program is
  bitwise repeatable; different programs for the same sums differ by up to ~1e-6 on our
  parameters (|w| < 1) after a few epochs of the test corpora: 1e-5 leaves a 10x margin.
- GPU: reductions are split across threads in shapes that depend on the program, and
  scatter-adds sum in arrival order unless Config.deterministic; an NVIDIA H100 gave 1.6e-5
  on the vectorised-versus-sequential test, so 1e-4 (still far below the 1e-2 changes one
  step of training makes) is the GPU's bound.
"""

from __future__ import annotations

import jax

_ATOL = {"cpu": 1e-5, "gpu": 1e-4, "tpu": 1e-4}


def reordered_sums_tol() -> float:
    """Tolerance for two programs that add the same numbers in another order: absolute on
    parameters, relative on losses (both are of order 0.1-1)."""
    return _ATOL.get(jax.default_backend(), 1e-4)
