"""What this process is told about CPUs, and what actually limits it.

Run it on the host, then inside the container or pod you deploy to, and compare.
"""

import os
from pathlib import Path


def cgroup_cpu_limit() -> str:
    """The CPU quota of this process's cgroup, as a number of CPUs, or "none"."""
    v2 = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "max 100000" or "150000 100000"
    if v2.is_file():
        quota, period = v2.read_text().split()
        return "none" if quota == "max" else f"{int(quota) / int(period):g}"
    v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")  # cgroup v1: -1 means no quota
    if v1.is_file():
        quota = int(v1.read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return "none" if quota < 0 else f"{quota / period:g}"
    return "unknown (no cgroup CPU controller found)"


def report() -> dict[str, object]:
    # Python 3.13+: the CPUs this process may run on (its affinity), not the quota.
    process_cpu_count = getattr(os, "process_cpu_count", None)
    return {
        "os.cpu_count()": os.cpu_count(),
        "len(os.sched_getaffinity(0))": len(os.sched_getaffinity(0)),
        "os.process_cpu_count()": process_cpu_count() if process_cpu_count else "needs 3.13",
        "cgroup CPU quota": cgroup_cpu_limit(),
    }


if __name__ == "__main__":
    for name, value in report().items():
        print(f"{name}: {value}")
