package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"banger/api"
)

const imageCols = `name, managed, dir, rootfs, work_seed, kernel, initrd, modules, kernel_ref, source, digest, size, tools, created_at, updated_at`

func scanImage(row interface{ Scan(...any) error }) (api.Image, error) {
	var im api.Image
	var created, updated string
	var tools sql.NullString
	err := row.Scan(&im.Name, &im.Managed, &im.Dir, &im.Rootfs, &im.WorkSeed, &im.Kernel, &im.Initrd, &im.Modules,
		&im.KernelRef, &im.Source, &im.Digest, &im.Size, &tools, &created, &updated)
	im.CreatedAt, im.UpdatedAt = parseTime(created), parseTime(updated)
	if tools.Valid {
		im.Tools, im.ToolVersions = decodeTools(tools.String)
	}
	return im, err
}

// The tools column lists an image's tools, each with its recorded version
// when it has one: "opencode=1.18.33,pi=0.73.1,mise". Rows written before
// versions were recorded hold names alone, which read the same way.
func encodeTools(tools []string, versions map[string]string) sql.NullString {
	parts := make([]string, len(tools))
	for i, t := range tools {
		parts[i] = t
		if v := versions[t]; v != "" {
			parts[i] += "=" + v
		}
	}
	return sql.NullString{String: strings.Join(parts, ","), Valid: tools != nil}
}

func decodeTools(s string) ([]string, map[string]string) {
	tools := []string{}
	var versions map[string]string
	if s == "" {
		return tools, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(part, "=")
		tools = append(tools, name)
		if ok && v != "" {
			if versions == nil {
				versions = map[string]string{}
			}
			versions[name] = v
		}
	}
	return tools, versions
}

// Images lists every image ordered by name.
func (t *Reader) Images(ctx context.Context) ([]api.Image, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+imageCols+` FROM images ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	defer rows.Close()
	out := []api.Image{}
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("reading image row: %w", err)
		}
		out = append(out, im)
	}
	return out, rows.Err()
}

// Image returns one image, or ErrNoRow.
func (t *Reader) Image(ctx context.Context, name string) (api.Image, error) {
	im, err := scanImage(t.q.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Image{}, ErrNoRow
	}
	if err != nil {
		return api.Image{}, fmt.Errorf("reading image %q: %w", name, err)
	}
	return im, nil
}

// PutImage inserts or replaces an image row.
func (t *Tx) PutImage(ctx context.Context, im api.Image) error {
	if im.CreatedAt.IsZero() {
		im.CreatedAt = time.Now()
	}
	im.UpdatedAt = time.Now()
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO images (`+imageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		im.Name, im.Managed, im.Dir, im.Rootfs, im.WorkSeed, im.Kernel, im.Initrd, im.Modules,
		im.KernelRef, im.Source, im.Digest, im.Size, encodeTools(im.Tools, im.ToolVersions), formatTime(im.CreatedAt), formatTime(im.UpdatedAt))
	if err != nil {
		return fmt.Errorf("writing image %q: %w", im.Name, err)
	}
	return nil
}

// DeleteImage removes an image row; deleting a missing row is not an error.
func (t *Tx) DeleteImage(ctx context.Context, name string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM images WHERE name = ?`, name); err != nil {
		return fmt.Errorf("deleting image %q: %w", name, err)
	}
	return nil
}
