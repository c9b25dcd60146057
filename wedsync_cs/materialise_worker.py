"""``python -m wedsync_cs.materialise_worker END``: load the online store up to the instant END
in a process of its own, the settings (JSON) on standard input; prints the seconds it took.

``score-daily`` runs it beside its directory sync and scoring: Feast's SQLite online store
writes one statement per feature value from Python (about 90 s for 74,000 suppliers, all on
one core), while the scoring reads the day's rows from the offline table and needs no online
row. The worker dies with the process that started it, even if that one is killed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from contextlib import redirect_stdout
from datetime import datetime

# what materialisation reads of the settings (the rest, tokens and database URLs, stay out of
# the pipe)
SETTINGS_FIELDS = frozenset(
    {
        "home",
        "threads",
        "online_store",
        "redis_connection",
        "feature_history_every_days",
        "feature_recent_days",
        "feature_memory_limit",
        "feast_project",
    }
)


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent ends (a SIGKILL of ``score-daily``
    leaves no materialisation holding the online store's lock)."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent ended before the request took effect
        sys.exit(1)


def main(argv: list[str]) -> None:
    import pandas as pd

    from wedsync_cs.feature_jobs import materialize_features
    from wedsync_cs.settings import Settings

    die_with_parent()
    settings = Settings.model_validate_json(sys.stdin.read())
    end = pd.Timestamp(datetime.fromisoformat(argv[0]))
    began = time.perf_counter()
    with redirect_stdout(io.StringIO()):  # Feast prints per view
        materialize_features(settings, end)
    print(json.dumps({"seconds": round(time.perf_counter() - began, 2)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
