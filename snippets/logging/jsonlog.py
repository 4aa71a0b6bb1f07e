"""One JSON object per log line, for the app's, the server's and the access log."""

import json
import logging
from contextvars import ContextVar

# Set by the request ID middleware (main.py); read for every line logged during a request.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if request_id.get() is not None:
            line["request_id"] = request_id.get()
        line.update(access_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def access_fields(record: logging.LogRecord) -> dict:
    """The request an access line is about, from the arguments each server logs it with."""
    if record.name == "uvicorn.access" and isinstance(record.args, tuple):
        client, method, path, _, status = record.args  # Uvicorn, alone or as a Gunicorn worker
        return {"client": str(client).rpartition(":")[0], "method": method, "path": path,
                "status": int(status)}
    if record.name == "gunicorn.access" and isinstance(record.args, dict):
        atoms = record.args  # Gunicorn's own access log (the asgi worker)
        path = atoms["U"] + (f"?{atoms['q']}" if atoms["q"] not in ("", "-") else "")
        return {"client": atoms["h"], "method": atoms["m"], "path": path,
                "status": int(atoms["s"]), "duration_ms": atoms["M"]}
    return {}
