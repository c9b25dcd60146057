"""Speed and memory figures of the platform, printed with their targets and ratios.

Each benchmark runs in a child process, so its wall time and peak memory (``ru_maxrss`` of the
child) are its own. Usage: ``python benchmarks/run.py [--only NAME] [--suppliers N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float
    peak_gb: float
    target_seconds: float
    target_gb: float
    details: dict

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.seconds:8.1f} s  (target {self.target_seconds:5.0f} s, "
            f"ratio {self.seconds / self.target_seconds:4.2f})  {self.peak_gb:5.2f} GB  "
            f"(target {self.target_gb:.0f} GB, ratio {self.peak_gb / self.target_gb:4.2f})"
        )


def _child(code: str) -> tuple[float, float, dict]:
    """Run ``code`` in a fresh interpreter; return wall seconds, peak GB and its JSON output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        print("note: peak memory not above an earlier child's; figure is a lower bound")
    return seconds, peak_kb / 1024**2, json.loads(out.stdout.strip().splitlines()[-1])


def bench_simulator(suppliers: int, days: int, workdir: Path) -> Result:
    code = f"""
import json
from pathlib import Path
from features.simulator import SimulationConfig, simulate
s = simulate(SimulationConfig(suppliers={suppliers}, days={days}, seed=1),
             Path({str(workdir / "sim")!r}), overwrite=True)
print(json.dumps({{"rows": s.rows, "monthly_churn_rate": round(s.monthly_churn_rate, 4),
                  "truth_rows": s.truth_rows, "truth_mean_se": round(s.truth_mean_se, 5),
                  "inner_seconds": round(s.seconds, 1)}}))
"""
    seconds, peak, details = _child(code)
    return Result(f"simulate {suppliers:,} x {days} d", seconds, peak, 180, 6, details)


def bench_validation(workdir: Path) -> Result:
    code = f"""
import json
from features.raw_reader import load_raw
t = load_raw({str(workdir / "sim" / "raw")!r})
print(json.dumps({{"rows": int(sum(len(f) for f in t.frames.values())), "ok": t.report.ok}}))
"""
    seconds, peak, details = _child(code)
    return Result("validate that folder", seconds, peak, 180, 8, details)


BENCHES = ("simulator", "validation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suppliers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--only", choices=BENCHES, action="append")
    args = parser.parse_args()
    chosen = args.only or list(BENCHES)
    with tempfile.TemporaryDirectory(prefix="wedsync-bench-") as tmp:
        workdir = Path(tmp)
        results = [bench_simulator(args.suppliers, args.days, workdir)]
        print(results[-1].line(), flush=True)
        print("   ", json.dumps(results[-1].details), flush=True)
        if "validation" in chosen:
            results.append(bench_validation(workdir))
            print(results[-1].line(), flush=True)
            print("   ", json.dumps(results[-1].details), flush=True)


if __name__ == "__main__":
    main()
