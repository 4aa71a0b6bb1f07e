# Run in the folder that holds main.py and gunicorn.conf.py
gunicorn main:app
