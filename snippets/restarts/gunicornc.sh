# gunicornc finds the master's control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn/).
# --8<-- [start:show-workers]
gunicornc --json --command "show workers"
# --8<-- [end:show-workers]
# --8<-- [start:worker-add]
gunicornc --command "worker add 1"
# --8<-- [end:worker-add]
# --8<-- [start:worker-remove]
gunicornc --command "worker remove 1"
# --8<-- [end:worker-remove]
# --8<-- [start:reload]
gunicornc --command "reload"
# --8<-- [end:reload]
