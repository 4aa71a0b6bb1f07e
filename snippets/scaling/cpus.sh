python cpus.py
