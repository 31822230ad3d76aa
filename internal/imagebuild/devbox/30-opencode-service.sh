# banger devbox: the opencode service on 0.0.0.0:4096, started at boot
# when opencode is installed and restarted when it fails (systemd, or
# OpenRC's supervise-daemon on Alpine). Part of the tools step.
# BANGER_ETC stands for /etc in tests.
set -eu
etc=${BANGER_ETC:-/etc}

if [ -f /etc/alpine-release ]; then
	mkdir -p "$etc/init.d"
	cat >"$etc/init.d/opencode" <<'RC'
#!/sbin/openrc-run
description="opencode server for banger"
supervisor=supervise-daemon
respawn_delay=2
command=/usr/local/bin/opencode
command_args="serve --hostname 0.0.0.0 --port 4096"
directory=/root
export HOME=/root
depend() { need net; }
start_pre() { [ -x "$command" ]; }
RC
	chmod 0755 "$etc/init.d/opencode"
	rc-update add opencode default >/dev/null 2>&1 || true
	exit 0
fi

mkdir -p "$etc/systemd/system/multi-user.target.wants"
cat >"$etc/systemd/system/opencode.service" <<'UNIT'
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
ln -sf /etc/systemd/system/opencode.service "$etc/systemd/system/multi-user.target.wants/opencode.service"
