# The listening socket's queue: Send-Q is the backlog the server asked for
ss -ltn 'sport = :8000'
