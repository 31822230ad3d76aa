# banger devbox: the opencode service on 0.0.0.0:4096, started at boot
# when opencode is installed.
set -eu

if [ -f /etc/alpine-release ]; then
	cat > /etc/init.d/opencode <<'RC'
#!/sbin/openrc-run
description="opencode server for banger"
command=/usr/local/bin/opencode
command_args="serve --hostname 0.0.0.0 --port 4096"
command_background=true
pidfile=/run/opencode.pid
directory=/root
depend() { need net; }
RC
	chmod 0755 /etc/init.d/opencode
	rc-update add opencode default >/dev/null 2>&1 || true
	exit 0
fi

cat > /etc/systemd/system/opencode.service <<'UNIT'
[Unit]
Description=opencode server for banger (0.0.0.0:4096)
After=network-online.target root.mount
ConditionPathExists=/usr/local/bin/opencode

[Service]
Environment=HOME=/root
WorkingDirectory=/root
ExecStart=/usr/local/bin/opencode serve --hostname 0.0.0.0 --port 4096
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/opencode.service /etc/systemd/system/multi-user.target.wants/opencode.service
