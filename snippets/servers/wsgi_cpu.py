import json
import os
import threading


def app(environ: dict, start_response) -> list[bytes]:
    """A WSGI app whose only endpoint is pure Python computation (CPU-bound)."""
    total = sum(i * i for i in range(3_000_000))
    body = {"pid": os.getpid(), "thread": threading.get_ident(), "total": total}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
