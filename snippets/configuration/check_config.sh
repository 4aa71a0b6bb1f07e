# --8<-- [start:ok]
gunicorn --check-config main:app
# --8<-- [end:ok]
# --8<-- [start:bad-app]
gunicorn --check-config main:application
# --8<-- [end:bad-app]
# --8<-- [start:bad-value]
gunicorn --check-config --workers=three main:app
# --8<-- [end:bad-value]
# --8<-- [start:missing-files]
gunicorn --check-config main:app --keyfile tls/key.pem --certfile tls/cert.pem --access-logfile log/access.log
# --8<-- [end:missing-files]
# --8<-- [start:typo]
gunicorn --check-config -c typo.conf.py main:app
gunicorn --print-config -c typo.conf.py main:app | grep -E '^workers '
# --8<-- [end:typo]
