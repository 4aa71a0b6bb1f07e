# gunicorn.conf.py in this folder says: workers = 2, bind = "0.0.0.0:8000"
export GUNICORN_CMD_ARGS="--workers=4 --bind=0.0.0.0:8080"
gunicorn main:app --workers=3
