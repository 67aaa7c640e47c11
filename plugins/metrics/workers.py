"""Where several workers keep their counts, decided before prometheus_client is imported.

prometheus_client picks in-memory or multiprocess values when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``. The observer hook runs in ``serve``'s parent process before
it spawns the workers, which inherit the variable, then once in each worker.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir(workers: int) -> str | None:
    """The folder the workers' counts are shared through, or None for one process.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` wins (they then empty it before a start).
    Otherwise, with ``server.workers > 1``, the first process to ask (``serve``'s parent)
    makes a fresh private folder, hands it to the workers through the environment, and
    removes it when it exits; a restart thus never adds up the counts of a past run.
    """
    current = os.environ.get(MULTIPROC_ENV)
    if current or workers <= 1:
        return current or None
    path = tempfile.mkdtemp(prefix="grok2api-metrics-")
    os.environ[MULTIPROC_ENV] = path
    atexit.register(shutil.rmtree, path, True)
    return path
