curl --fail --silent --show-error -H 'Content-Type: application/json' \
     -d '{"text": "hello"}' http://127.0.0.1:8000/messages
