# --8<-- [start:serve]
uvicorn main:app --host 0.0.0.0 --port 8000
# --8<-- [end:serve]
# --8<-- [start:limit-concurrency]
uvicorn main:app --host 0.0.0.0 --port 8000 --limit-concurrency 4
# --8<-- [end:limit-concurrency]
# --8<-- [start:backlog]
uvicorn main:app --host 0.0.0.0 --port 8000 --backlog 64
# --8<-- [end:backlog]
# --8<-- [start:body-limit]
uvicorn body_limit:app --host 0.0.0.0 --port 8000
# --8<-- [end:body-limit]
