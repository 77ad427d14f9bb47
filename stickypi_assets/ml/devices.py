"""The one torch-device resolver: what ``--gpu``, a resource's ``device`` and a model asset's run config mean.

``auto`` is CUDA when the machine has one, else the CPU; ``cpu`` always works; ``cuda`` or ``cuda:N`` must exist,
and asking for it on a machine without CUDA is a clear error before any work starts, not a crash in the middle
of a training (torch itself only fails at the first tensor it moves).
"""

from __future__ import annotations

DEVICE_HELP = "torch device: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'"


def resolve_device(requested: str = "cpu") -> str:
    """A torch device string that exists on this machine; raises ``ValueError`` saying why otherwise."""
    requested = (requested or "cpu").strip().lower()
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and requested != "cuda" and not _is_cuda_index(requested):
        raise ValueError(f"unknown device {requested!r}; {DEVICE_HELP}")
    import torch

    available = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ValueError(f"device {requested!r} asked for, but this machine has no CUDA device")
    count = torch.cuda.device_count()
    if ":" in requested and int(requested.split(":")[1]) >= count:
        raise ValueError(f"device {requested!r} asked for, but this machine has {count} CUDA device(s)")
    return requested


def gpu_flag_device(gpu: bool) -> str:
    """The device of a command's ``--gpu`` flag: CUDA when given (which must exist), else the CPU."""
    return resolve_device("cuda" if gpu else "cpu")


def _is_cuda_index(text: str) -> bool:
    head, _, index = text.partition(":")
    return head == "cuda" and index.isdigit()
