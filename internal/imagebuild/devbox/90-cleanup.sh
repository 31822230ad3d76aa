# Runs at the end of every build step: what makes each VM unique is
# removed so that every VM of the image makes its own at first boot (the
# agent regenerates SSH host keys when its marker is absent).
rm -f /etc/ssh/ssh_host_*
rm -f /var/lib/banger/ssh-host-keys-generated /var/lib/banger/ssh_host_ed25519_key /var/lib/banger/ssh_host_ed25519_key.pub
if [ -f /etc/machine-id ]; then : > /etc/machine-id; fi
rm -f /var/lib/dbus/machine-id
rm -rf /var/tmp/banger-build
sync
