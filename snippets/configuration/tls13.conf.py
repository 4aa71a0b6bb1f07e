# A Gunicorn config file that refuses anything older than TLS 1.3.
# Gunicorn calls ssl_context() to build its TLS context; the asgi worker uses it,
# uvicorn_worker.UvicornWorker builds its own context and never calls it.
import ssl


def ssl_context(conf, default_ssl_context_factory):
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context
