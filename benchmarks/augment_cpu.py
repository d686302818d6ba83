"""Per-sample reference augmentation (torchio 3D / torchvision 2D) against `augment_batch`, on one
CPU core: is the batched path worth it where no GPU is?

    python benchmarks/augment_cpu.py [--n 256] [--batch 128] [--repeat 3]

Both sides get the same n uint8 MedMNIST-size samples (smooth random volumes/images). The
reference runs one sample at a time, as a DataLoader worker would; the batched side takes the
engine's layout, an (N, C, ...) uint8 tensor, in batches of --batch. torch and SimpleITK are
limited to one thread. Reported: ms per sample (best of --repeat for each side) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _samples(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """n smooth uint8 samples: low-resolution noise upsampled, like blurry anatomy."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 1) + tuple(s // 4 for s in shape), dtype=np.float32))
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    fine = torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=False)
    return (fine[:, 0] * 255).clamp(0, 255).to(torch.uint8).numpy()


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _bench(is_3d: bool, n: int, batch: int, repeat: int) -> tuple[float, float]:
    from damtui.train.augment import augment_batch, reference_transform

    shape = (28, 28, 28) if is_3d else (28, 28)
    samples = _samples(n, shape)
    ref = reference_transform(is_3d, train=True)
    batched = torch.from_numpy(samples)[:, None].contiguous()

    def run_ref() -> None:
        for s in samples:
            ref(s)

    def run_batched() -> None:
        for lo in range(0, n, batch):
            augment_batch(batched[lo:lo + batch], is_3d)

    ref(samples[0])  # warm-up: imports, first-call allocations
    augment_batch(batched[:batch], is_3d)
    torch.manual_seed(0)
    t_ref = _best(run_ref, repeat) / n
    t_batched = _best(run_batched, repeat) / n
    return t_ref * 1e3, t_batched * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="samples per side")
    parser.add_argument("--batch", type=int, default=128, help="augment_batch batch size")
    parser.add_argument("--repeat", type=int, default=3, help="take the best of this many runs")
    args = parser.parse_args()

    torch.set_num_threads(1)
    import SimpleITK as sitk  # torchio resamples through ITK, which has its own thread pool
    import torchio
    import torchvision

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    print(f"CPU: {_cpu_name()} | 1 thread (torch + SimpleITK) | load avg {os.getloadavg()[0]:.2f}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"torchio {torchio.__version__}; n={args.n}, batch={args.batch}, best of {args.repeat}")
    print(f"{'':4} {'reference ms/sample':>20} {'batched ms/sample':>18} {'speed-up':>9}")
    for is_3d, name in ((True, "3D"), (False, "2D")):
        t_ref, t_batched = _bench(is_3d, args.n, args.batch, args.repeat)
        print(f"{name:4} {t_ref:20.3f} {t_batched:18.3f} {t_ref / t_batched:8.1f}x")


if __name__ == "__main__":
    main()
