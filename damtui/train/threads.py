"""How many CPU threads a run's torch ops use: chosen on purpose, never left to OpenMP's default.

PyTorch's default is one thread per core. When other processes share those cores, its OpenMP
workers spin at every barrier waiting for each other and a CPU epoch can be ten times slower
(measured in docs/PERFORMANCE.md, "CPU threads"). Precedence: `--threads N`, then
`$DAMTUI_THREADS`, then the preset's `threads`, then `default_threads()`. Sweeps running several
CPU jobs side by side pass each child its share through `$DAMTUI_THREADS`.

The count is stored with the run (runtime "threads"), and a resumed run trains with it again
unless `--threads` or `$DAMTUI_THREADS` say otherwise: on a CPU another count sums in another
order, so a run started with 2 threads and resumed with the idle cores of a busier moment (1)
would differ from the uninterrupted run from then on (docs/RELIABILITY.md, round 3).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

ENV = "DAMTUI_THREADS"


def usable_cores() -> int:
    """Cores this process may run on (a cgroup/taskset limit counts, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(idle, total) jiffies of these CPUs from /proc/stat; None where there is no /proc."""
    idle = total = 0
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]
        idle += values[3] + values[4]  # idle + iowait
        total += sum(values)
    return (idle, total) if total else None


def idle_cores(interval_s: float = 0.2) -> float | None:
    """How many of this process's cores sat idle over the last `interval_s`: now, not the
    1-minute load average, which still counts a run that just ended."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    first = _cpu_times(cpus)
    time.sleep(interval_s)
    second = _cpu_times(cpus)
    if first is None or second is None or second[1] <= first[1]:
        return None
    return len(cpus) * (second[0] - first[0]) / (second[1] - first[1])


def default_threads(cores: int | None = None, idle: float | None = None) -> int:
    """The cores nobody else is using right now; at least 1, at most every usable core.

    On a quiet machine that is every core; with busy processes beside the run it is fewer, which
    keeps the OpenMP team from spinning against them (see the module docstring)."""
    cores = usable_cores() if cores is None else cores
    if idle is None:
        idle = idle_cores()
    if idle is None:
        return cores
    return max(1, min(cores, int(idle + 0.5)))


def parse_threads(text: str, where: str) -> int:
    """A thread count from a flag or the environment; DamtuiError names `where` otherwise."""
    from damtui.errors import DamtuiError

    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise DamtuiError(f"{where} takes a whole number of CPU threads >= 1 (got {text!r})")
    return n


def resolve_threads(flag: int | None = None, preset: int | None = None) -> int:
    """The thread count by the precedence in this module's docstring."""
    if flag is not None:
        return parse_threads(str(flag), "--threads")
    if env := os.environ.get(ENV, "").strip():
        return parse_threads(env, f"${ENV}")
    if preset is not None:
        return preset
    return default_threads()


def apply_threads(n: int) -> int:
    """Set torch's intra-op thread count for this process (cheap when unchanged); returns n."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def stored_threads(runtime: dict[str, Any]) -> int | None:
    """The thread count a run trained with: its runtime's "threads", or for runs saved before
    that was stored, the count in its CPU device name ("cpu (x86_64, 2 threads)")."""
    n = runtime.get("threads")
    if type(n) is int and n >= 1:
        return n
    m = re.match(r"^cpu \(.*?(\d+) threads\)$", str(runtime.get("device", "")))
    return int(m.group(1)) if m and int(m.group(1)) >= 1 else None


def run_threads(flag: int | None, preset: int | None, stored: int | None = None) -> tuple[int, str]:
    """The thread count of a run, and a note when a resumed run (`stored`: the count it trained
    with) is given another one by --threads or $DAMTUI_THREADS; without those it keeps its own."""
    if stored is not None and flag is None and not os.environ.get(ENV, "").strip():
        return stored, ""
    n = resolve_threads(flag, preset)
    if stored is None or n == stored:
        return n, ""
    return n, (f"threads: {n}, where this run trained with {stored}; on a CPU its numbers can differ from an"
               f" uninterrupted run's from here on (--threads {stored} keeps them equal)")
