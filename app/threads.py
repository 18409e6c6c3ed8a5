"""How many threads a forward may use on the CPU (CONDGEN_TORCH_THREADS; 0 means choose).

torch's default is one intra-op thread per core. The threads of a forward meet at a barrier after every
parallel op, so when fewer cores are free than there are threads (this process's event loop and encoding
threads, other processes, a container's CPU quota that os.cpu_count() does not show), the threads that ran
wait for one that is not scheduled and the forward slows several-fold: on the 2-core benchmark machine a
served batch of 64 ran 7x faster with one thread than with two (benchmarks/README.md). Chosen: the CPUs
this process may really use, less one left to the rest of the service. On a GPU the device does the work,
so torch's default stays.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by a cgroup quota (v2 cpu.max, else v1 cfs quota/period); None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may run on (affinity), capped by a cgroup quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    return max(1, min(cpus, math.floor(limit))) if limit else cpus


def intra_op_threads(setting: int, device: torch.device, cpus: int | None = None) -> int | None:
    """The thread count to set: the setting when > 0; on the CPU, usable CPUs less one (at least one);
    None (keep torch's default) on other devices."""
    if setting > 0:
        return setting
    if device.type != "cpu":
        return None
    return max(1, (cpus if cpus is not None else usable_cpus()) - 1)


def configure(setting: int, device: torch.device) -> int:
    """Apply the choice to this process (for the app's lifetime); returns the count before, for restore()."""
    previous = torch.get_num_threads()
    threads = intra_op_threads(setting, device)
    if threads is not None:
        torch.set_num_threads(threads)
    return previous


def restore(previous: int) -> None:
    """Put back what configure() found (an app that ends leaves its process as it was: tests build many)."""
    torch.set_num_threads(previous)
