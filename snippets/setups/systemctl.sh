# Install, start, deploy new code, stop: run as root on the VM.
# --8<-- [start:install]
cp fastapi.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now fastapi
# --8<-- [end:install]
# --8<-- [start:reload]
systemctl reload fastapi
# --8<-- [end:reload]
# --8<-- [start:stop]
systemctl stop fastapi
# --8<-- [end:stop]
