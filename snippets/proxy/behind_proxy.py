"""main.py's app for Gunicorn's asgi worker, with the client address taken from X-Forwarded-For.

Uvicorn's middleware trusts the same list as the servers: $FORWARDED_ALLOW_IPS,
or 127.0.0.1 and ::1 when it is not set.
"""

import os

from main import app as fastapi_app
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

app = ProxyHeadersMiddleware(
    fastapi_app, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
)
