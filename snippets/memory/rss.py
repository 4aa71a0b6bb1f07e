"""Print the resident memory (RSS) of each child process of a server's master, over time.

    python rss.py MASTER_PID [SECONDS_BETWEEN_SAMPLES] [NUMBER_OF_SAMPLES]

Linux only: it reads /proc, so it needs nothing installed. The children of a Gunicorn master
or of the uvicorn --workers parent are its workers (Uvicorn also has a small
multiprocessing helper). With no number of samples it runs until interrupted.
"""

import sys
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after "(command name)"
        if parent == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    return None


def main(master: int, every: float = 10, samples: int = 0) -> None:
    taken = 0
    while True:
        stamp = time.strftime("%H:%M:%S")
        for pid in children(master):
            rss = rss_mib(pid)
            if rss is not None:
                print(f"{stamp} pid={pid} rss_mib={rss:.1f}", flush=True)
        taken += 1
        if samples and taken >= samples:
            return
        time.sleep(every)


if __name__ == "__main__":
    args = sys.argv[1:]
    every = float(args[1]) if len(args) > 1 else 10
    main(int(args[0]), every, int(args[2]) if len(args) > 2 else 0)
