package ingest

import (
	"testing"
	"time"
)

func TestParseRFC3339(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time // zero = refused
	}{
		{"2025-06-01T08:00:00Z", time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)},
		{"2025-06-01T16:00:00+08:00", time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)},
		{"2025-06-01T03:30:00-04:30", time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)},
		{"2025-06-01T08:00:00.5Z", time.Date(2025, 6, 1, 8, 0, 0, 5e8, time.UTC)},
		{"2025-06-01T08:00:00.123456789Z", time.Date(2025, 6, 1, 8, 0, 0, 123456789, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2025-01-01T07:59:59+08:00", time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2025-02-29T00:00:00Z", time.Time{}},
		{"2025-04-31T00:00:00Z", time.Time{}},
		{"2025-13-01T00:00:00Z", time.Time{}},
		{"2025-06-00T00:00:00Z", time.Time{}},
		{"2025-06-01T24:00:00Z", time.Time{}},
		{"2025-06-01T23:60:00Z", time.Time{}},
		{"2025-06-01T23:59:60Z", time.Time{}},
		{"2025-06-01T08:00:00", time.Time{}},
		{"2025-06-01 08:00:00Z", time.Time{}},
		{"2025-06-01t08:00:00Z", time.Time{}},
		{"2025-06-01T08:00:00,5Z", time.Time{}},
		{"2025-06-01T08:00:00.Z", time.Time{}},
		{"2025-06-01T08:00:00.1234567891Z", time.Time{}},
		{"2025-06-01T08:00:00+0800", time.Time{}},
		{"2025-06-01T08:00:00+24:00", time.Time{}},
		{"2025-06-01T08:00:00Zjunk", time.Time{}},
		{"2025-6-01T08:00:00Z", time.Time{}},
		{"+025-06-01T08:00:00Z", time.Time{}},
		{"", time.Time{}},
	}
	for _, tc := range cases {
		got, ok := parseRFC3339([]byte(tc.in))
		if tc.want.IsZero() {
			if ok {
				t.Errorf("%q: accepted as %v", tc.in, got)
			}
			continue
		}
		if !ok || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%q: got %v %v, want %v", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzParseRFC3339: whatever the strict parser accepts, time.Parse accepts too
// and reads as the same instant.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2025-06-01T08:00:00Z", "2025-06-01T16:00:00.250+08:00", "1999-12-31T23:59:59.999999999-12:59", "2024-02-29T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%q accepted, but time.Parse refuses: %v", s, err)
		}
		if !got.Equal(want) {
			t.Fatalf("%q: got %v, time.Parse %v", s, got, want)
		}
	})
}
