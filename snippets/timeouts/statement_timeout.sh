# libpq reads PGOPTIONS: every statement on this connection gets a 1-second limit.
PGOPTIONS="-c statement_timeout=1s" psql "$DATABASE_URL" --command "SELECT pg_sleep(5)" --command "SELECT 'still connected' AS status"
