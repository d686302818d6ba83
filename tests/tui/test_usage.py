"""The monitor's CPU and RAM (issue 26: what W&B users reached for): read from /proc."""

from __future__ import annotations

import os
import sys

import pytest

from damtui.tui import usage


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_process_cpu_and_memory_from_proc(monkeypatch):
    monkeypatch.undo()  # the Pilot tests' fixed sample (conftest): the real reader here
    probe = usage.UsageProbe(os.getpid())
    first = probe.sample()
    assert first is not None and first.cpu_percent is None  # a share needs two samples
    sum(i * i for i in range(200_000))  # some CPU time between them
    second = probe.sample()
    assert second.cpu_percent is not None and second.cpu_percent >= 0
    assert second.rss_bytes > 10 * 1024**2 and 0 < second.mem_used_bytes < second.mem_total_bytes
    assert usage.UsageProbe(2**30).sample() is None  # no such process: nothing shown


def test_the_line_reads_in_words():
    line = usage.Usage(187.4, 1536 * 1024**2, 20 * usage.GIB, 128 * usage.GIB, 16).describe()
    assert line == "CPU 187% of 16 cores  RAM 1.5 GiB (machine 20/128 GiB used)"
    assert usage.Usage(None, 300 * 1024**2, None, None, 2).describe() == "CPU - of 2 cores  RAM 300 MiB"
