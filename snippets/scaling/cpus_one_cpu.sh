# the same program, allowed to run on CPU 0 only (as a cpuset would allow)
taskset -c 0 python cpus.py
