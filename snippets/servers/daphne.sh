# --8<-- [start:serve]
daphne --bind 0.0.0.0 --port 8000 main:app
# --8<-- [end:serve]
# --8<-- [start:tls]
daphne --endpoint ssl:8443:interface=0.0.0.0:privateKey=server.key:certKey=server.pem main:app
# --8<-- [end:tls]
# --8<-- [start:timeout]
daphne --bind 0.0.0.0 --port 8000 --http-timeout 2 main:app
# --8<-- [end:timeout]
