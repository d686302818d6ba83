"""Ctrl+C while damtui starts (issue 28, item 15): what each moment prints.

    python benchmarks/ctrl_c.py [--tries 4] [--tree CHECKOUT]

Starts `python -m damtui.cli runs list` and sends SIGINT after 0-150 ms, `--tries` times per delay,
and sorts what came back: "quiet" (only `damtui: interrupted`, exit 130), "silent" (killed by the
signal before Python installed its handler: no output), "python-fatal" (Python's own
`Fatal Python error: init_import_site`, a Ctrl+C inside the interpreter's start-up, before any
damtui code), "traceback" (a KeyboardInterrupt traceback: damtui's code was running without its
handler), or "finished" (the command ended first).
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DELAYS_MS = (0, 2, 5, 10, 20, 30, 40, 50, 70, 100, 150)


def kind(rc: int, err: str) -> str:
    if "Fatal Python error" in err:
        return "python-fatal"
    if "Traceback" in err:
        return "traceback"
    if err.strip() == "damtui: interrupted" and rc == 130:
        return "quiet"
    if not err.strip() and rc == -signal.SIGINT:
        return "silent"
    return "finished" if rc in (0, 1) else f"other rc={rc}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=4)
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": args.tree, "DAMTUI_RUNS": tempfile.mkdtemp(prefix="damtui-ctrl-c-")}
    counts: dict[int, collections.Counter] = {d: collections.Counter() for d in DELAYS_MS}
    for _ in range(args.tries):
        for d in DELAYS_MS:
            proc = subprocess.Popen([sys.executable, "-m", "damtui.cli", "runs", "list"], env=env, cwd=args.tree,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(d / 1000)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate()
            counts[d][kind(proc.returncode, err)] += 1
    total: collections.Counter = collections.Counter()
    for d, c in counts.items():
        total.update(c)
        print(f"{d:4d} ms  " + ", ".join(f"{k} {n}" for k, n in sorted(c.items())))
    print("all      " + ", ".join(f"{k} {n}" for k, n in sorted(total.items())))
    return 0 if total["traceback"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
