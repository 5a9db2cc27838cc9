"""How a run goes once its examples reach the devices: the step (``step``, ``optim``), the
compiled program and its loop (``loop``), the run's record and hooks (``history``, ``hooks``),
its checkpoints (``checkpoint``, ``checksums``, ``resume``), memory (``memory``), its workdir
and results files (``workdir``, ``records``). ``w2v_jax.run`` ties them together."""
