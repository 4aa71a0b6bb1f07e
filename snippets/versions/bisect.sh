# Where did a claim change? The same run, on the gunicorn-23 set, with one Uvicorn release at a
# time (oldest first); the first release where the outcome differs goes into grid.json
.venv/bin/python -m tools grid --set gunicorn-23 \
    --tests tests/test_timeouts.py::test_uvicorn_supervisor_does_not_kill_a_blocked_worker \
    --versions uvicorn=0.30.6,0.34.0,0.36.1,0.37.0
