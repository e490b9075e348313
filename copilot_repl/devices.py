"""Device choice: `auto` picks cuda, then mps, then cpu, and says why. torch is imported only to
choose: `train --help` lists DEVICES without paying torch's 2 s import."""

from __future__ import annotations

from copilot_repl.errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> tuple[str, str]:
    """The torch device to use for `name`, and a short reason for the choice."""
    import torch

    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu")
    if name == "mps" and not _mps_available():
        raise DeviceError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    if name != "auto":
        return name, "asked for"
    if torch.cuda.is_available():
        return "cuda", f"auto: CUDA GPU {torch.cuda.get_device_name(0)}"
    if _mps_available():
        return "mps", "auto: Apple Metal available"
    return "cpu", "auto: no GPU found"
