package hotspot

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Photo is one close-out photo's metadata; the file lives under photo_dir.
type Photo struct {
	ID          string    `json:"id"`
	ReportID    int64     `json:"report_id"`
	File        string    `json:"file"` // relative to photo_dir; generated, never from the client
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	UploadedBy  string    `json:"uploaded_by"`
	UploadedAt  time.Time `json:"uploaded_at"`
}

// AddPhoto stores one photo for a report. The content (not the client's name or
// declared type) decides: only the configured image types pass, and anything larger
// than max_photo_bytes is refused before it reaches the disk.
func (s *Service) AddPhoto(ctx context.Context, reportID int64, actor string, r io.Reader) (Photo, error) {
	data, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxPhotoBytes+1))
	if err != nil {
		return Photo{}, fmt.Errorf("photo: read: %w", err)
	}
	if int64(len(data)) > s.cfg.MaxPhotoBytes {
		return Photo{}, fmt.Errorf("larger than %d bytes: %w", s.cfg.MaxPhotoBytes, ErrPhotoTooLarge)
	}
	if len(data) == 0 {
		return Photo{}, fmt.Errorf("empty: %w", ErrBadPhoto)
	}
	ct := http.DetectContentType(data)
	ext, ok := photoExt(ct)
	if !ok || !slices.Contains(s.cfg.PhotoTypes, ct) || !plausibleImage(ct, data) {
		return Photo{}, fmt.Errorf("content is %s, want one of %v: %w", ct, s.cfg.PhotoTypes, ErrBadPhoto)
	}
	rep, err := getReport(ctx, s.db, reportID)
	if err != nil {
		return Photo{}, err
	}
	if rep.Status == StatusMerged {
		return Photo{}, fmt.Errorf("report %d was merged into %d: %w", reportID, rep.MergedInto, ErrWrongStatus)
	}
	var idb [16]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Photo{}, fmt.Errorf("photo id: %w", err)
	}
	sum := sha256.Sum256(data)
	now := s.clk.Now()
	if actor == "" {
		actor = "anonymous"
	}
	p := Photo{ID: hex.EncodeToString(idb[:]), ReportID: reportID, ContentType: ct, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), UploadedBy: actor, UploadedAt: now}
	p.File = filepath.Join(fmt.Sprint(reportID), p.ID+ext)
	full := filepath.Join(s.cfg.PhotoDir, p.File)
	if err := writeFileAtomic(full, data); err != nil {
		return Photo{}, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO hotspot_photos(id, report_id, file, content_type, size, sha256,
		uploaded_by, uploaded_at) VALUES(?,?,?,?,?,?,?,?)`, p.ID, reportID, p.File, ct, p.Size, p.SHA256, actor, now.Unix()); err != nil {
		os.Remove(full)
		return Photo{}, fmt.Errorf("photo: store: %w", err)
	}
	if err := addHistory(ctx, s.db, reportID, now, actor, "photo_added", rep.Status, rep.Status,
		map[string]any{"photo": p.ID, "size": p.Size, "type": ct}); err != nil {
		return p, err
	}
	if r, err := getReport(ctx, s.db, reportID); err == nil {
		s.publish(r)
	}
	return p, nil
}

// plausibleImage checks a little more than the sniffer: a JPEG must end with EOI, a PNG
// must have its IHDR chunk, a WebP its VP8 chunk — so a renamed text file with an image
// prefix glued on does not pass.
func plausibleImage(ct string, b []byte) bool {
	switch ct {
	case "image/jpeg":
		return len(b) > 4 && bytes.Equal(b[len(b)-2:], []byte{0xFF, 0xD9})
	case "image/png":
		return len(b) > 16 && bytes.Equal(b[12:16], []byte("IHDR"))
	case "image/webp":
		return len(b) > 16 && bytes.HasPrefix(b[12:], []byte("VP8"))
	}
	return false
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("photo: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return fmt.Errorf("photo: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("photo: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("photo: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("photo: close: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("photo: %w", err)
	}
	return nil
}

// Photos lists a report's photos.
func (s *Service) Photos(ctx context.Context, reportID int64) ([]Photo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, report_id, file, content_type, size, sha256, uploaded_by, uploaded_at
		FROM hotspot_photos WHERE report_id=? ORDER BY uploaded_at, id`, reportID)
	if err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	defer rows.Close()
	out := []Photo{}
	for rows.Next() {
		var p Photo
		var at int64
		if err := rows.Scan(&p.ID, &p.ReportID, &p.File, &p.ContentType, &p.Size, &p.SHA256, &p.UploadedBy, &at); err != nil {
			return nil, fmt.Errorf("photos: %w", err)
		}
		p.UploadedAt = time.Unix(at, 0).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// PhotoFile opens a stored photo by id for serving.
func (s *Service) PhotoFile(ctx context.Context, id string) (Photo, *os.File, error) {
	var p Photo
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT id, report_id, file, content_type, size, sha256, uploaded_by, uploaded_at
		FROM hotspot_photos WHERE id=?`, id).Scan(&p.ID, &p.ReportID, &p.File, &p.ContentType, &p.Size, &p.SHA256, &p.UploadedBy, &at)
	if err == sql.ErrNoRows {
		return p, nil, fmt.Errorf("%s: %w", id, ErrPhotoNotFound)
	}
	if err != nil {
		return p, nil, fmt.Errorf("photo: %w", err)
	}
	p.UploadedAt = time.Unix(at, 0).UTC()
	f, err := os.Open(filepath.Join(s.cfg.PhotoDir, p.File))
	if err != nil {
		return p, nil, fmt.Errorf("photo %s: %w", id, err)
	}
	return p, f, nil
}
