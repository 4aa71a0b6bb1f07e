# Check the unit before you install it (systemd-analyze comes with systemd).
systemd-analyze verify --man=no fastapi.service
