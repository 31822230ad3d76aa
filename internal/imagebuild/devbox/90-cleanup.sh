# Runs at the end of every build step: what makes each VM unique is
# removed so that every VM of the image gets its own.
rm -f /etc/ssh/ssh_host_*
if [ -f /etc/machine-id ]; then : > /etc/machine-id; fi
rm -f /var/lib/dbus/machine-id
rm -rf /var/tmp/banger-build
sync
