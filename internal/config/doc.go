// Package config reads banger's configuration file,
// ~/.config/banger/config.toml (paths.Layout.ConfigFile).
//
// Every key is optional and top-level; a missing file means Default. The
// file is the user's only interface to these settings, so Parse reports
// every problem at once rather than the first, each naming the file, the
// line, the key and the fix:
//
//	config.toml:3: unknown key "bridge_nmae"; did you mean "bridge_name"? (valid keys: log_level, ...)
//	config.toml:7: bridge_ip: 10.0.0.1 is outside cidr 172.16.0.0/24; pick an address inside it such as 172.16.0.1
//
// A file moving the guest network elsewhere:
//
//	log_level = "debug"
//	cidr = "10.77.0.0/24"
//	bridge_ip = "10.77.0.1"
//	default_dns = "1.1.1.1, 9.9.9.9"
//	ssh_key_path = "~/.ssh/id_ed25519"
//	auth_sync = ["opencode"]   # only opencode's credentials; [] for none
//
// A daemon run as root that jails each Firecracker (docs/firecracker.md;
// jailer_chroot_base must be on the filesystem of the state directory,
// as the VM's disks are hard-linked into the chroot):
//
//	firecracker_jailer = true
//	jailer_bin = "/usr/local/bin/jailer"
//	jailer_uid = 900
//	jailer_gid = 900
//	jailer_chroot_base = "/var/lib/banger/jail"
//
// Config.Format prints the effective configuration, every key included,
// for 'banger config show'; Parse reads that output back unchanged.
package config
