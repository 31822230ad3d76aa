# banger devbox: base packages and sshd for banger.
# Runs as root in the builder VM. BANGER_BEST_EFFORT=1 turns failures of
# network installs into warnings.
set -eu

if [ -f /etc/alpine-release ]; then
	# openrc starts sshd and the opencode service at boot; opencode's musl
	# binary needs libstdc++.
	apk add --no-cache openssh git curl ca-certificates openrc libstdc++ libgcc
	rc-update add sshd default >/dev/null 2>&1 || true
elif command -v apt-get >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	need=""
	for p in systemd-sysv udev dbus openssh-server git curl ca-certificates iproute2 procps less sudo tar gzip xz-utils unzip; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
	done
	if [ -n "$need" ]; then
		echo "installing$need"
		apt-get update -q
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $need
		apt-get clean
	fi
else
	echo "this image has neither apt-get nor apk; the devbox set supports Debian, Ubuntu and Alpine bases" >&2
	exit 1
fi

# sshd: root logs in with the banger key only.
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/banger.conf <<'CONF'
# Written by banger image build. Guests are single-user sandboxes reached
# with the key banger authorises for root on each VM.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
ClientAliveInterval 30
CONF
if [ -f /etc/ssh/sshd_config ] && ! grep -q '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config; then
	sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl enable ssh.service >/dev/null 2>&1 || systemctl enable sshd.service >/dev/null 2>&1 || true
fi
