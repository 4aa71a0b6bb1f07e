"""Anti-pattern under --preload: a socket opened when the module is imported."""

import os
import socket

from fastapi import FastAPI

STATSD = ("127.0.0.1", 8125)  # a metrics daemon; UDP, so connect() sends nothing

# Opened at import. With --preload the import runs once, in the master, before the fork:
# every worker inherits this one socket.
metrics = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
metrics.connect(STATSD)

app = FastAPI()


@app.get("/socket")
async def which_socket() -> dict[str, int]:
    return {"pid": os.getpid(), "local_port": metrics.getsockname()[1]}
