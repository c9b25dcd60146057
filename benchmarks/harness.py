"""Running one benchmark function in a fresh interpreter, so that its wall time and peak memory
(``ru_maxrss`` of that process, or its process tree's sampled total when larger) are its own.

A benchmark is a function of a ``benchmarks`` module that takes JSON-able arguments and returns
a JSON-able dict of figures. :func:`run_child` runs it by name (``module:function``) through
``python -m benchmarks.harness``, which prints the returned dict and the peak memory after a
marker.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARK = "BENCH_RESULT"


@dataclass(frozen=True)
class Result:
    """A benchmark's wall time and peak memory with their targets, and its figures."""

    name: str
    seconds: float
    peak_gb: float
    target_seconds: float
    target_gb: float
    details: dict

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.seconds:8.{1 if self.seconds >= 1 else 3}f} s  "
            f"(target {self.target_seconds:5.0f} s, "
            f"ratio {self.seconds / self.target_seconds:4.2f})  {self.peak_gb:5.2f} GB  "
            f"(target {self.target_gb:.0f} GB, ratio {self.peak_gb / self.target_gb:4.2f})"
        )


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_gb: float
    details: dict


def run_child(function: str, **kwargs: Any) -> ChildRun:
    """Run ``benchmarks.<module>:<function>(**kwargs)`` in a fresh interpreter.

    Raises:
        RuntimeError: the benchmark failed (the message ends with its error output) or printed
            no result.
    """
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", function, json.dumps(kwargs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - began
    if out.returncode:
        raise RuntimeError(f"benchmark {function} failed:\n{out.stderr[-3000:]}")
    found = [
        json.loads(line.split(MARK, 1)[1]) for line in out.stdout.splitlines() if MARK in line
    ]
    if len(found) != 1:
        raise RuntimeError(f"benchmark {function} printed no result:\n{out.stdout[-3000:]}")
    return ChildRun(seconds, found[0]["peak_kb"] / 1024**2, found[0]["details"])


class TreePeak:
    """The largest resident memory of this process and its children together, sampled every
    ``every`` seconds in a thread (a job may run stages in child processes at once; the peak
    of each process alone would hide their sum)."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # ended since the listing
                    total += p.memory_info().rss
            self.peak_kb = max(self.peak_kb, total // 1024)
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _main(function: str, arguments: str) -> None:
    module, name = function.split(":")
    call = getattr(importlib.import_module(f"benchmarks.{module}"), name)
    with TreePeak() as tree:
        details = call(**json.loads(arguments))
    # the process's own peak (exact, from the kernel) or the tree's sampled one if larger
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tree.peak_kb)
    print(f"\n{MARK}", json.dumps({"details": details, "peak_kb": peak}), flush=True)
    sys.stderr.flush()
    # The figures are out: leave without the interpreter's teardown. Once in a CI run, a native
    # library aborted there ("terminate called without an active exception") after the
    # benchmark had finished, and the figures were lost with the exit code.
    os._exit(0)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
