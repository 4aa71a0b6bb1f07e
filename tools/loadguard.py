"""The load guard every measure verb runs: record the machine, refuse a busy one.

Before measuring, :func:`before` reads the machine (CPU model, cores, memory, kernel, Python),
the 1/5/15-minute load average and the CPU counters in ``/proc/stat``. It refuses (raises
:class:`Busy`, which the verbs turn into a non-zero exit and the message) when the 1-minute load
average is above half the core count, unless the run was started with ``--under-load``: then the
result is marked ``"under_load": true``, and the tests that check committed results reject it.
After measuring, :func:`after` adds the load after the run and the CPU steal over the run (the
share of CPU time the hypervisor gave to other guests, from the ``steal`` column of
``/proc/stat``). Every measured data file carries the block :func:`after` returns.

Readings are injectable (``loadavg=``, ``stat=``) so that the refusal can be tested without
loading the machine. Run as a verb it only reports: ``python -m tools loadguard``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: The 1-minute load average may be at most this share of the cores when a run starts.
BUSY_SHARE = 0.5
UNDER_LOAD_FLAG = "--under-load"
#: A reading of /proc/loadavg to use instead of the real one ("3.1 2.0 1.2"): for the test that
#: shows the refusal without loading the machine. Never set it to get past the guard.
FAKE_LOADAVG_VAR = "HANDBOOK_FAKE_LOADAVG"


class Busy(RuntimeError):
    """The machine is too busy to measure; the message gives the numbers and the way out."""


def machine() -> dict[str, str]:
    """What the numbers are measured on (the same keys as the committed data files)."""
    cpu, memory = "unknown CPU", "unknown"
    with contextlib.suppress(OSError):
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) * 1024 / 2**30:.0f} GiB"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def read_loadavg(text: str | None = None) -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages (from ``/proc/loadavg`` unless given its text)."""
    if text is None:
        text = os.environ.get(FAKE_LOADAVG_VAR) or (PROC / "loadavg").read_text()
    one, five, fifteen = (float(x) for x in text.split()[:3])
    return one, five, fifteen


def read_cpu_times(text: str | None = None) -> dict[str, int]:
    """The machine-wide CPU counters of ``/proc/stat`` (in clock ticks), steal included."""
    text = (PROC / "stat").read_text() if text is None else text
    fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:9]]
            return dict(zip(fields, values + [0] * (len(fields) - len(values)), strict=True))
    raise ValueError("no 'cpu' line in /proc/stat")


def threshold(cores: int) -> float:
    return cores * BUSY_SHARE


@dataclass
class Reading:
    """What :func:`before` saw; pass it to :func:`after` when the run is over."""

    machine: dict[str, str]
    loadavg: tuple[float, float, float]
    cpu_times: dict[str, int]
    under_load: bool


def before(under_load: bool = False, *, loadavg: str | None = None, stat: str | None = None,
           cores: int | None = None, command: str = "python -m tools measure ...") -> Reading:
    """Read the machine before a run; raise :class:`Busy` if it is busy and not ``under_load``."""
    info = machine()
    if cores is not None:
        info["cores"] = str(cores)
    load = read_loadavg(loadavg)
    limit = threshold(int(info["cores"]))
    if load[0] > limit and not under_load:
        raise Busy(
            f"refusing to measure: the 1-minute load average is {load[0]:.2f} "
            f"(5 min {load[1]:.2f}, 15 min {load[2]:.2f}), above {limit:g}, half of the "
            f"{info['cores']} cores; the numbers would measure the other work. Wait for a quiet "
            f"machine, or run `{command} {UNDER_LOAD_FLAG}` to measure anyway (the result is "
            f'marked "under_load": true and the tests reject it as a committed result).'
        )
    return Reading(info, load, read_cpu_times(stat), under_load)


def steal_percent(start: dict[str, int], end: dict[str, int]) -> float:
    """CPU steal over the run, as a percentage of all CPU time that passed."""
    total = sum(end.values()) - sum(start.values())
    return round(100 * (end["steal"] - start["steal"]) / total, 2) if total > 0 else 0.0


def after(reading: Reading, *, loadavg: str | None = None, stat: str | None = None) -> dict:
    """The block every measured data file carries (merged into its top level)."""
    load = read_loadavg(loadavg)
    return {
        "machine": reading.machine,
        "load_before": reading.loadavg[0],
        "load_after": load[0],
        "loadavg_before": list(reading.loadavg),
        "loadavg_after": list(load),
        "steal_percent": steal_percent(reading.cpu_times, read_cpu_times(stat)),
        "under_load": reading.under_load,
    }


def load_before(data: dict) -> float | None:
    """The 1-minute load average a data file recorded before its run (older files: ``load``)."""
    value = data.get("load_before", data.get("load"))
    return None if value is None else float(value)


def problems(data: dict) -> list[str]:
    """Why a committed data file may not stand as a page's numbers (empty: it may)."""
    found = []
    if data.get("under_load"):
        found.append('it is marked "under_load": true (measured with --under-load)')
    cores = int(data.get("machine", {}).get("cores") or 0)
    load = load_before(data)
    if load is None:
        found.append("it records no load average before the run")
    elif cores and load > threshold(cores):
        found.append(f"its load before the run, {load:.2f}, is above {threshold(cores):g} "
                     f"(half of its {cores} cores)")
    return found


def main(argv: list[str]) -> int:
    """Print what the guard sees now, and whether it would let a measurement start."""
    under_load = UNDER_LOAD_FLAG in argv
    try:
        reading = before(under_load)
    except Busy as e:
        print(e, file=sys.stderr)
        return 1
    print(json.dumps(after(reading), indent=2))
    return 0
