# Replace a worker whose RSS stays at or above 300 MiB; sample every second (the default is 30).
granian --interface asgi --workers 2 --workers-max-rss 300 --rss-sample-interval 1 --host 0.0.0.0 --port 8000 main:app
