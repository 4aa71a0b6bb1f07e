# --8<-- [start:resolved]
# The settings Gunicorn would run with, after the file, GUNICORN_CMD_ARGS and the command line
gunicorn --print-config main:app | grep -E '^(bind|workers|worker_class|accesslog) '
# --8<-- [end:resolved]
# --8<-- [start:port]
PORT=8000 gunicorn --print-config main:app | grep -E '^bind '
# --8<-- [end:port]
