# A misspelt setting: Gunicorn knows "workers", not "worker".
worker = 4
