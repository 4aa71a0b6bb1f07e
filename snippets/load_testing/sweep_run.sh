locust -f locustfile.py --headless --users 20 --spawn-rate 20 --run-time 10s --host http://127.0.0.1:8000 --json-file run --only-summary --exit-code-on-error 1
