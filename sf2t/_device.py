"""Checking a user-named torch device before any work: one message for every command."""

from __future__ import annotations


def device_problem(device) -> str | None:
    """What is wrong with ``device`` on this machine (None: nothing): not a torch device, or a CUDA device it lacks."""
    import torch

    from sf2t._plural import counted

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return f"device {device!r} is not a torch device (cpu, cuda, cuda:1, ...)"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return f"device {device}: torch sees no CUDA device on this machine (use cpu)"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"device {device}: this machine has {counted(torch.cuda.device_count(), 'CUDA device')}"
    return None


def require_device(device, prefix: str = "") -> None:
    """:func:`device_problem` as a ValueError (``prefix`` before the message, e.g. ``"--device: "``)."""
    problem = device_problem(device)
    if problem:
        raise ValueError(prefix + problem)
