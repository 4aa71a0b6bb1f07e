python bench.py
