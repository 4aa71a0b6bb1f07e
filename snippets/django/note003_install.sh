# Note 003's install line. Do not use it: see the two problems below.
# --8<-- [start:as-written]
pip install gunicorn uvicorn uvicorn-worker==0.3.0
# --8<-- [end:as-written]
# --8<-- [start:older-uvicorn]
pip install gunicorn "uvicorn<0.36" uvicorn-worker==0.3.0
# --8<-- [end:older-uvicorn]
