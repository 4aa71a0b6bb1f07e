python measure.py
