package hotspot

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/lookoutfire/lookout/errs"
)

func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 12))
	for x := 0; x < 16; x++ {
		img.Set(x, x%12, color.RGBA{R: 200, A: 255})
	}
	return img
}

func pngBytes(t testing.TB) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testImage()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPhotoUpload(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxPhotoBytes = 4096 })
	r := forestReport(t, e)
	ctx := context.Background()
	var gifBuf bytes.Buffer
	gif.Encode(&gifBuf, testImage(), nil)
	jp := jpegBytes(t)
	big := append(append([]byte{}, jp[:len(jp)-2]...), make([]byte, 5000)...)
	big = append(big, 0xFF, 0xD9)

	tests := []struct {
		name    string
		data    []byte
		wantErr error
		ct      string
	}{
		{"png", pngBytes(t), nil, "image/png"},
		{"jpeg", jp, nil, "image/jpeg"},
		{"text", []byte("just some text, named photo.jpg by the client"), ErrBadPhoto, ""},
		{"html", []byte("<html><script>alert(1)</script></html>"), ErrBadPhoto, ""},
		{"gif is not an accepted type", gifBuf.Bytes(), ErrBadPhoto, ""},
		{"jpeg magic glued on text", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte("not really an image at all")...), ErrBadPhoto, ""},
		{"png magic glued on text", append([]byte("\x89PNG\r\n\x1a\n"), []byte("no IHDR chunk follows here")...), ErrBadPhoto, ""},
		{"empty", nil, ErrBadPhoto, ""},
		{"oversize", big, ErrPhotoTooLarge, ""},
	}
	for _, tc := range tests {
		p, err := e.svc.AddPhoto(ctx, r.ID, "li", bytes.NewReader(tc.data))
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if p.ContentType != tc.ct || p.Size != int64(len(tc.data)) || p.UploadedBy != "li" || p.ReportID != r.ID {
			t.Errorf("%s: %+v", tc.name, p)
		}
		stored, err := os.ReadFile(filepath.Join(e.cfg.PhotoDir, p.File))
		if err != nil || !bytes.Equal(stored, tc.data) {
			t.Errorf("%s: stored file %v", tc.name, err)
		}
		if !regexp.MustCompile(`^\d+/[0-9a-f]{32}\.(png|jpg)$`).MatchString(filepath.ToSlash(p.File)) {
			t.Errorf("%s: stored as %q", tc.name, p.File)
		}
	}
	if !errors.Is(ErrPhotoTooLarge, errs.ErrTooLarge) || !errors.Is(ErrBadPhoto, errs.ErrInvalid) {
		t.Fatal("photo errors do not wrap errs kinds")
	}
	ps, err := e.svc.Photos(ctx, r.ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("photos %+v %v", ps, err)
	}
	// Only the two accepted files reached the disk (no temp files left behind).
	var files []string
	filepath.WalkDir(e.cfg.PhotoDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 2 {
		t.Fatalf("files on disk: %v", files)
	}
	if _, err := e.svc.AddPhoto(ctx, 999, "li", bytes.NewReader(pngBytes(t))); !errors.Is(err, ErrReportNotFound) {
		t.Fatalf("photo for unknown report: %v", err)
	}
	p, f, err := e.svc.PhotoFile(ctx, ps[0].ID)
	if err != nil || p.ID != ps[0].ID {
		t.Fatalf("photo file %v", err)
	}
	f.Close()
	if _, _, err := e.svc.PhotoFile(ctx, "00000000000000000000000000000000"); !errors.Is(err, ErrPhotoNotFound) {
		t.Fatalf("unknown photo: %v", err)
	}
}
