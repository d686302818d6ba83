"""One line on the monitor: the GPU's memory and utilisation while the app trains on CUDA
(damtui.train.gpu.probe, or the probe the app was given). Hidden for a CPU run. The probe runs in a
worker on a timer: the driver calls must not stall the event loop."""

from __future__ import annotations

from textual import work
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from damtui.train.gpu import GpuSample, cuda_index

GPU_EVERY_S = 2.0


class GpuLine(Static):
    DEFAULT_CSS = "GpuLine { height: 1; padding: 0 1; color: $text-muted; display: none; }"

    class Sampled(Message):
        def __init__(self, sample: GpuSample | None) -> None:
            super().__init__()
            self.sample = sample

    def on_mount(self) -> None:
        self.set_interval(GPU_EVERY_S, self.sample)
        self.sample()

    def device(self) -> str:
        """The device of the app's run while it trains ('' when none trains)."""
        s = getattr(self.app, "session", None)
        return s.device if s is not None and not s.ended else ""

    def sample(self) -> None:
        device = self.device()
        if cuda_index(device) is None:
            self.display = False
            return
        self._probe(device)

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False)
    def _probe(self, device: str) -> None:
        sample = self.app.gpu_probe(device)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Sampled(sample))

    def on_gpu_line_sampled(self, message: Sampled) -> None:
        if message.sample is None or cuda_index(self.device()) is None:
            self.display = False
            return
        self.update(message.sample.describe())
        self.display = True
