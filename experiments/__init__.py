"""Runnable experiments: ``python -m experiments.<name>``.

The entry scripts own their process, so they set process-wide options here, before numpy loads:
numpy asks the kernel for transparent huge pages for large arrays, and on kernels that then
defragment memory synchronously (``/sys/kernel/mm/transparent_hugepage/defrag`` = madvise) the
first touch of each fresh array is about 5x slower, which doubles the data stage's time.
"""

import os

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
