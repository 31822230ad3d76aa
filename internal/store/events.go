package store

import (
	"context"
	"fmt"

	"banger/api"
)

// AddEvent appends to the event log and trims it to the newest 10000.
func (t *Tx) AddEvent(ctx context.Context, level, subject, message string) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO events (time, level, subject, message) VALUES (?,?,?,?)`,
		now(), level, subject, message)
	if err != nil {
		return fmt.Errorf("recording event: %w", err)
	}
	_, err = t.q.ExecContext(ctx, `DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - 10000`)
	return err
}

// Events returns up to limit events newer than afterID, oldest first.
// An empty subject matches all.
func (t *Reader) Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT id, time, level, subject, message FROM (
		SELECT * FROM events WHERE id > ? AND (? = '' OR subject = ?) ORDER BY id DESC LIMIT ?) ORDER BY id`,
		afterID, subject, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	out := []api.LogEntry{}
	for rows.Next() {
		var e api.LogEntry
		var ts string
		if err := rows.Scan(&e.ID, &ts, &e.Level, &e.Subject, &e.Message); err != nil {
			return nil, err
		}
		e.Time = parseTime(ts)
		out = append(out, e)
	}
	return out, rows.Err()
}
