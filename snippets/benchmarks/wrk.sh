wrk --threads 2 --connections 32 --duration 5s --timeout 10s --script report.lua http://127.0.0.1:8000/io
