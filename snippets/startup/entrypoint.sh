#!/bin/sh
# The image's ENTRYPOINT: apply the migrations, then replace this shell with the server
# command (the image's CMD, passed as arguments), so the server gets the stop signal.
set -e
python migrate.py
exec "$@"
