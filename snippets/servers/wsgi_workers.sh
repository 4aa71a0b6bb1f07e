# --8<-- [start:sync]
gunicorn main:app --worker-class sync --bind 0.0.0.0:8000
# --8<-- [end:sync]
# --8<-- [start:gthread]
gunicorn main:app --worker-class gthread --threads 4 --bind 0.0.0.0:8000
# --8<-- [end:gthread]
# --8<-- [start:gevent]
gunicorn main:app --worker-class gevent --bind 0.0.0.0:8000
# --8<-- [end:gevent]
# --8<-- [start:tornado]
gunicorn main:app --worker-class tornado --bind 0.0.0.0:8000
# --8<-- [end:tornado]
# --8<-- [start:gevent_wsgi]
gunicorn main:app --worker-class gevent_wsgi --bind 0.0.0.0:8000
# --8<-- [end:gevent_wsgi]
# --8<-- [start:gevent_pywsgi]
gunicorn main:app --worker-class gevent_pywsgi --bind 0.0.0.0:8000
# --8<-- [end:gevent_pywsgi]
