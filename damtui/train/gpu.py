"""What the GPU a run trains on is doing: memory (torch.cuda) and utilisation (nvidia-ml-py's
`pynvml`, when installed; omitted otherwise). Engine-side and free of Textual; the monitor calls
`probe` on a timer, in a worker, only for a run on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class GpuSample:
    index: int
    used_bytes: int  # the whole device's, every process (total - free)
    total_bytes: int
    allocated_bytes: int  # this process's tensors (torch's caching allocator)
    utilisation: int | None = None  # percent of the last sample period the GPU was busy

    def describe(self) -> str:
        text = (f"GPU {self.index}  memory {self.used_bytes / GIB:.1f}/{self.total_bytes / GIB:.1f} GiB"
                f" (this run {self.allocated_bytes / GIB:.1f} GiB)")
        return text + (f"  utilisation {self.utilisation}%" if self.utilisation is not None else "")


def cuda_index(device: str) -> int | None:
    """'cuda:1 (NVIDIA H200)' -> 1, 'cuda' -> 0, anything else (cpu, '') -> None."""
    name = device.split(" ", 1)[0].strip().lower()
    if name == "cuda":
        return 0
    if name.startswith("cuda:") and name[5:].isdigit():
        return int(name[5:])
    return None


def probe(device: str) -> GpuSample | None:
    """A sample of the device's state; None for a CPU device or when CUDA cannot answer."""
    index = cuda_index(device)
    if index is None:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(index)
        allocated = torch.cuda.memory_allocated(index)
    except Exception:  # noqa: BLE001 - a driver error must not break the monitor
        return None
    return GpuSample(index, total - free, total, allocated, _utilisation(index))


def nvml_index(index: int) -> int:
    """NVML numbers every GPU of the machine; torch only those in CUDA_VISIBLE_DEVICES."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible):
        if not visible[index].isdigit():  # GPU UUIDs: no index to map to
            raise ValueError(visible[index])
        return int(visible[index])
    return index


def _utilisation(index: int) -> int | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(index))
            return int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml.NVMLError and friends: just leave it out
        return None
