"""What the engine scripts of tools/bench_compare.sh share: the prompts and measurement names of
`lantern bench`, one JSON line per measurement, and the best-of timing.

Imported by tools/bench_diffusers.py, tools/bench_openvino.py and tools/bench_sdcpp.py (run as
scripts, so this folder is on their import path).
"""

import json
import os
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a lighthouse on a cliff at dusk, dramatic sky, oil painting, highly detailed"
NEGATIVE = "blurry, low quality"
MEASURES = ("load", "clip", "unet256", "unet512", "vae512", "gen512")


def bench_cache():
    """BENCH_CACHE, or .bench-cache in the repository."""
    return Path(os.environ.get("BENCH_CACHE", ROOT / ".bench-cache")).resolve()


def peak_rss_bytes():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def reporter(impl):
    """A `report(name, seconds, **extra)` printing one JSON line for engine `impl`."""

    def report(name, seconds, **extra):
        line = dict(impl=impl, name=name, seconds=seconds, peak_rss_bytes=peak_rss_bytes())
        line.update({k: str(v) for k, v in extra.items()})
        print(json.dumps(line), flush=True)

    return report


def best_of(repeats, fn):
    """One warm-up, then the fastest of `repeats`; also CPU time / wall time over them."""
    fn()
    best, wall, cpu = float("inf"), 0.0, cpu_seconds()
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, wall = min(best, dt), wall + dt
    return best, (cpu_seconds() - cpu) / wall
