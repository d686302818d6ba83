"""Which devices training can use, for the CLI's --device and the TUI's device picker."""

from __future__ import annotations

from damtui.errors import DamtuiError


def available_devices() -> list[tuple[str, str]]:
    """(device id, label) pairs: auto, cpu, then each CUDA GPU with its name and free memory."""
    import torch

    out = [("auto", "auto (GPU if present)"), ("cpu", "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            name = torch.cuda.get_device_name(i)
            out.append((f"cuda:{i}", f"cuda:{i} {name} ({free / 2**30:.0f}/{total / 2**30:.0f} GiB free)"))
    return out


def resolve_device(name: str) -> "torch.device":  # noqa: F821
    """'auto' -> first GPU if any else CPU; a GPU that is not there is a one-line error."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DamtuiError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DamtuiError(f"device {name!r} asked for but no CUDA GPU is visible; use --device cpu")
        if (dev.index or 0) >= torch.cuda.device_count():
            raise DamtuiError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) visible"
            )
        return torch.device("cuda", dev.index or 0)
    if dev.type != "cpu":
        raise DamtuiError(f"device {name!r} is not supported; use auto, cpu or cuda:N")
    return dev
