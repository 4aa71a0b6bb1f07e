locust -f locustfile.py --headless --users 10 --spawn-rate 10 --run-time 5s --host http://127.0.0.1:8000 --csv results --exit-code-on-error 1
