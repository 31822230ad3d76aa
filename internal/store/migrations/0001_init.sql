CREATE TABLE images (
	name       TEXT PRIMARY KEY,
	managed    INTEGER NOT NULL DEFAULT 0,
	dir        TEXT NOT NULL DEFAULT '',
	rootfs     TEXT NOT NULL,
	work_seed  TEXT NOT NULL DEFAULT '',
	kernel     TEXT NOT NULL DEFAULT '',
	initrd     TEXT NOT NULL DEFAULT '',
	modules    TEXT NOT NULL DEFAULT '',
	kernel_ref TEXT NOT NULL DEFAULT '',
	source     TEXT NOT NULL,
	digest     TEXT NOT NULL DEFAULT '',
	size       INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

CREATE TABLE kernels (
	name        TEXT PRIMARY KEY,
	version     TEXT NOT NULL DEFAULT '',
	arch        TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	dir         TEXT NOT NULL,
	kernel      TEXT NOT NULL,
	initrd      TEXT NOT NULL DEFAULT '',
	modules     TEXT NOT NULL DEFAULT '',
	sha256      TEXT NOT NULL DEFAULT '',
	size        INTEGER NOT NULL DEFAULT 0,
	source      TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL
);

CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    TEXT NOT NULL,
	level   TEXT NOT NULL DEFAULT 'info',
	subject TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL
);
CREATE INDEX events_subject ON events(subject, id);
