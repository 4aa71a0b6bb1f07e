"""The same app with an upper bound of one second on every request."""

from main import app
from request_timeout import RequestTimeout

app.add_middleware(RequestTimeout, seconds=1.0)
