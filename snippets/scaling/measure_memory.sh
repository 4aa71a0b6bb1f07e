python measure_memory.py
