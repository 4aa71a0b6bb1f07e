# A Gunicorn configuration file. The master reads it again on every HUP.
workers = 2
