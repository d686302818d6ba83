"""CPU and memory of the process that trains, and the machine's memory, for the monitor's usage
line beside the GPU's. Read from /proc (Linux) without a dependency; elsewhere nothing is shown.
Pure: no Textual."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3


@dataclass(frozen=True)
class Usage:
    cpu_percent: float | None  # of one core since the last sample (200% = two cores busy)
    rss_bytes: int  # the process's resident memory
    mem_used_bytes: int | None  # the machine's (total - available)
    mem_total_bytes: int | None
    cores: int

    def describe(self) -> str:
        cpu = "-" if self.cpu_percent is None else f"{self.cpu_percent:.0f}%"
        text = f"CPU {cpu} of {self.cores} cores  RAM {_size(self.rss_bytes)}"
        if self.mem_used_bytes is not None and self.mem_total_bytes:
            text += f" (machine {self.mem_used_bytes / GIB:.0f}/{self.mem_total_bytes / GIB:.0f} GiB used)"
        return text


class UsageProbe:
    """Samples one process; the CPU share is measured between two samples."""

    def __init__(self, pid: int, proc: Path = Path("/proc")) -> None:
        self.pid, self.proc = pid, proc
        self._last: tuple[float, float] | None = None  # (wall seconds, CPU seconds)

    def sample(self) -> Usage | None:
        """None when /proc cannot answer (not Linux, the process is gone)."""
        try:
            fields = (self.proc / str(self.pid) / "stat").read_text().rsplit(")", 1)[1].split()
            status = (self.proc / str(self.pid) / "status").read_text()
        except (OSError, IndexError):
            return None
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        now = time.monotonic()
        percent = None
        if self._last is not None and now > self._last[0]:
            percent = max(0.0, 100.0 * (cpu_s - self._last[1]) / (now - self._last[0]))
        self._last = (now, cpu_s)
        rss = _kib(status, "VmRSS:") or 0
        used, total = self._machine()
        return Usage(percent, rss, used, total, os.cpu_count() or 1)

    def _machine(self) -> tuple[int | None, int | None]:
        try:
            info = (self.proc / "meminfo").read_text()
        except OSError:
            return None, None
        total, available = _kib(info, "MemTotal:"), _kib(info, "MemAvailable:")
        return (total - available if total is not None and available is not None else None), total


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 1024**2:.0f} MiB"


def _kib(text: str, key: str) -> int | None:
    """A '/proc' line 'Key:  1234 kB' in bytes."""
    for line in text.splitlines():
        if line.startswith(key):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) > 1 and parts[1].isdigit() else None
    return None
