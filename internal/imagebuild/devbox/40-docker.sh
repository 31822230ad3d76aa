# banger devbox --docker: Docker engine from the distribution.
set -eu

if [ -f /etc/alpine-release ]; then
	apk add --no-cache docker
	rc-update add docker default >/dev/null 2>&1 || true
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null 2>&1; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends docker.io iptables
	apt-get clean
fi
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /lib/systemd/system/docker.service /etc/systemd/system/multi-user.target.wants/docker.service
