"""The monitor's usage line while the app trains: CPU and memory of the training process and the
machine's memory (damtui.tui.usage), and under it, for a run on CUDA, the GPU's memory and
utilisation (damtui.train.gpu.probe, or the probe the app was given). The probes run in a worker on
a timer: reading /proc and the driver must not stall the event loop."""

from __future__ import annotations

import os
from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from damtui.train.gpu import GpuSample, cuda_index
from damtui.tui.usage import Usage, UsageProbe

GPU_EVERY_S = 2.0


class GpuLine(Static):
    DEFAULT_CSS = "GpuLine { height: auto; padding: 0 1; color: $text-muted; display: none; }"

    class Sampled(Message):
        def __init__(self, sample: GpuSample | None, usage: Usage | None = None) -> None:
            super().__init__()
            self.sample = sample
            self.usage = usage

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._probe_of: UsageProbe | None = None

    def on_mount(self) -> None:
        self.set_interval(GPU_EVERY_S, self.sample)
        self.sample()

    def device(self) -> str:
        """The device of the app's run while it trains ('' when none trains)."""
        s = getattr(self.app, "session", None)
        return (s.device or s.device_request) if s is not None and not s.ended else ""

    def pid(self) -> int | None:
        """The process that trains: the app's own `damtui train` process, this one for an engine
        thread, else (a run found training) the writer its status.json names (read in the worker)."""
        s = getattr(self.app, "session", None)
        process = getattr(s, "process", None)
        proc = getattr(process, "proc", None)
        if proc is not None:
            return proc.pid
        return os.getpid() if process is not None else None

    def sample(self) -> None:
        device = self.device()
        if not device:
            self.display = False
            return
        s = getattr(self.app, "session", None)
        self._probe(device, self.pid(), getattr(s, "run_dir", ""))

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False)
    def _probe(self, device: str, pid: int | None, run_dir: str) -> None:
        sample = self.app.gpu_probe(device) if cuda_index(device) is not None else None
        if pid is None and run_dir:
            from damtui.store.files import STATUS, read_json

            try:
                found = read_json(Path(run_dir) / STATUS).get("pid")
            except (OSError, ValueError, AttributeError):
                found = None
            pid = found if isinstance(found, int) and found > 0 else None
        if pid is not None and (self._probe_of is None or self._probe_of.pid != pid):
            self._probe_of = UsageProbe(pid)  # (only this worker, exclusive, touches it)
        measured = self._probe_of.sample() if pid is not None and self._probe_of is not None else None
        if not get_current_worker().is_cancelled:
            self.post_message(self.Sampled(sample, measured))

    def on_gpu_line_sampled(self, message: Sampled) -> None:
        lines = [x.describe() for x in (message.usage, message.sample) if x is not None]
        if not self.device() or not lines:
            self.display = False
            return
        self.update("\n".join(lines))
        self.display = True
