# MASTER_PID is the master (parent) process: the PID the server command started, or the
# number in the file that gunicorn --pid FILE writes.
# --8<-- [start:hup]
kill -s HUP "$MASTER_PID"
# --8<-- [end:hup]
# --8<-- [start:term]
kill -s TERM "$MASTER_PID"
# --8<-- [end:term]
# --8<-- [start:int]
kill -s INT "$MASTER_PID"
# --8<-- [end:int]
# --8<-- [start:quit]
kill -s QUIT "$MASTER_PID"
# --8<-- [end:quit]
# --8<-- [start:ttin]
kill -s TTIN "$MASTER_PID"
# --8<-- [end:ttin]
# --8<-- [start:ttou]
kill -s TTOU "$MASTER_PID"
# --8<-- [end:ttou]
# --8<-- [start:usr2]
kill -s USR2 "$MASTER_PID"
# --8<-- [end:usr2]
# --8<-- [start:winch]
kill -s WINCH "$MASTER_PID"
# --8<-- [end:winch]
