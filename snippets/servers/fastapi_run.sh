fastapi run main.py --port 8000 --workers 2
