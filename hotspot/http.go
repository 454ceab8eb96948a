package hotspot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

// Handlers are methods so the gateway's route table can reference them directly
// (e.g. web.Route{Method: "POST", Pattern: "/api/v1/hotspots/import", Handler: svc.HandleImport}).

func (s *Service) actor(r *http.Request) string {
	if s.user != nil {
		if u := s.user(r); u != "" {
			return u
		}
	}
	return "anonymous"
}

func pathID(r *http.Request) (int64, error) { return web.PathID(r, "id", "report id") }

// ImportBodyLimit is the request body limit the import route needs (max_import_bytes
// plus room for multipart framing); put it in the route's MaxBody.
func (s *Service) ImportBodyLimit() int64 { return s.cfg.MaxImportBytes + 1<<20 }

// PhotoBodyLimit is the request body limit of the photo route (up to 4 photos).
func (s *Service) PhotoBodyLimit() int64 { return 4*s.cfg.MaxPhotoBytes + 1<<20 }

// HandleImport imports FIRMS CSV sent as multipart/form-data (every file part) or as
// a plain body (text/csv). Replies {"results": [ImportResult…]}.
func (s *Service) HandleImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.ImportBodyLimit())
	source := "api:" + s.actor(r)
	var results []ImportResult
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			web.Error(w, r, fmt.Errorf("multipart: %v: %w", err, errs.ErrInvalid))
			return
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				web.Error(w, r, multipartErr(err))
				return
			}
			if part.FileName() == "" {
				part.Close()
				continue
			}
			res, err := s.Import(r.Context(), source+"/"+part.FileName(), part, nil)
			part.Close()
			if err != nil {
				web.Error(w, r, err)
				return
			}
			results = append(results, res)
		}
		if len(results) == 0 {
			web.Error(w, r, fmt.Errorf("no file part in the form: %w", errs.ErrInvalid))
			return
		}
	} else {
		res, err := s.Import(r.Context(), source, r.Body, nil)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		results = append(results, res)
	}
	web.JSON(w, http.StatusOK, map[string]any{"results": results})
}

func multipartErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("upload: %w", errs.ErrTooLarge)
	}
	return fmt.Errorf("multipart: %v: %w", err, errs.ErrInvalid)
}

// parseFilter reads the list filters: status (comma-separated or repeated; "open" =
// new, assigned and verifying), zone, class, since (RFC 3339), overdue (true/false),
// limit, offset.
func parseFilter(r *http.Request) (ListFilter, error) {
	q := r.URL.Query()
	f := ListFilter{Zone: q.Get("zone"), Class: Class(q.Get("class"))}
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			switch st := Status(strings.TrimSpace(st)); st {
			case "":
			case "open":
				f.Statuses = append(f.Statuses, StatusNew, StatusAssigned, StatusVerifying)
			case StatusNew, StatusAssigned, StatusVerifying, StatusClosed, StatusMerged:
				f.Statuses = append(f.Statuses, st)
			default:
				return f, fmt.Errorf("status %q: want new, assigned, verifying, closed, merged or open (= new, assigned, verifying), "+
					"several comma-separated: %w", st, errs.ErrInvalid)
			}
		}
	}
	switch f.Class {
	case "", ClassForest, ClassNearForest, ClassElsewhere, ClassHeatSource:
	default:
		return f, fmt.Errorf("class %q: %w", f.Class, errs.ErrInvalid)
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, fmt.Errorf("since %q: want RFC 3339: %w", v, errs.ErrInvalid)
		}
		f.Since = t
	}
	if v := q.Get("overdue"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("overdue %q: %w", v, errs.ErrInvalid)
		}
		f.Overdue = b
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &f.Limit}, {"offset", &f.Offset}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, fmt.Errorf("%s %q: %w", p.name, v, errs.ErrInvalid)
			}
			*p.dst = n
		}
	}
	return f, nil
}

// HandleList lists reports: GET /api/v1/hotspots/reports?status=&zone=&class=&since=&overdue=
// (see parseFilter; status=open,closed lists the reports in any of those statuses).
func (s *Service) HandleList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	reports, err := s.List(r.Context(), f)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"reports": reports})
}

// HandleGet returns one report with hotspots, corroboration, photos and history.
func (s *Service) HandleGet(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	d, err := s.Detail(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

// lifecycle decodes a JSON body into Req and runs one transition on the
// report named in the path, as the authenticated actor.
func lifecycle[Req any](s *Service, w http.ResponseWriter, r *http.Request,
	fn func(ctx context.Context, id int64, actor string, req Req) (Report, error)) {
	id, err := pathID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var req Req
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	rep, err := fn(r.Context(), id, s.actor(r), req)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}

// HandleAssign (re)assigns a report: body AssignRequest.
func (s *Service) HandleAssign(w http.ResponseWriter, r *http.Request) { lifecycle(s, w, r, s.Assign) }

// HandleVerify starts the check on the ground: body VerifyRequest.
func (s *Service) HandleVerify(w http.ResponseWriter, r *http.Request) {
	lifecycle(s, w, r, s.StartVerifying)
}

// HandleClose closes a report with its outcome: body CloseRequest.
func (s *Service) HandleClose(w http.ResponseWriter, r *http.Request) { lifecycle(s, w, r, s.Close) }

// HandleReopen reopens a closed report: body ReopenRequest.
func (s *Service) HandleReopen(w http.ResponseWriter, r *http.Request) { lifecycle(s, w, r, s.Reopen) }

// HandlePhotos stores the photos of a multipart/form-data upload (every file part;
// names and declared types from the client are ignored). Replies {"photos": [Photo…]}.
func (s *Service) HandlePhotos(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.PhotoBodyLimit())
	mr, err := r.MultipartReader()
	if err != nil {
		web.Error(w, r, fmt.Errorf("photos: want multipart/form-data: %w", errs.ErrInvalid))
		return
	}
	photos := []Photo{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			web.Error(w, r, multipartErr(err))
			return
		}
		if part.FileName() == "" {
			part.Close()
			continue
		}
		p, err := s.AddPhoto(r.Context(), id, s.actor(r), part)
		part.Close()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = fmt.Errorf("upload: %w", errs.ErrTooLarge)
			}
			web.Error(w, r, err)
			return
		}
		photos = append(photos, p)
	}
	if len(photos) == 0 {
		web.Error(w, r, fmt.Errorf("no file part in the form: %w", ErrBadPhoto))
		return
	}
	web.JSON(w, http.StatusCreated, map[string]any{"photos": photos})
}

// HandlePhoto serves one stored photo: GET /api/v1/hotspots/photos/{id}.
func (s *Service) HandlePhoto(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		web.Error(w, r, fmt.Errorf("photo id: %w", errs.ErrInvalid))
		return
	}
	p, f, err := s.PhotoFile(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", p.UploadedAt, f)
}

// exportReports lists the reports the query selects (at most 100,000 unless
// limit is given) for an export, answering the error itself when it fails.
func (s *Service) exportReports(w http.ResponseWriter, r *http.Request) ([]Report, bool) {
	f, err := parseFilter(r)
	if err != nil {
		web.Error(w, r, err)
		return nil, false
	}
	if r.URL.Query().Get("limit") == "" {
		f.Limit = 100_000
	}
	reports, err := s.List(r.Context(), f)
	if err != nil {
		web.Error(w, r, err)
		return nil, false
	}
	return reports, true
}

// HandleCSV exports the filtered reports as CSV with outcomes.
func (s *Service) HandleCSV(w http.ResponseWriter, r *http.Request) {
	reports, ok := s.exportReports(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="hotspot-reports.csv"`)
	if err := WriteCSV(w, reports); err != nil {
		return // headers are gone; the client sees a truncated file
	}
}

// HandleGeoJSON exports the filtered reports as GeoJSON.
func (s *Service) HandleGeoJSON(w http.ResponseWriter, r *http.Request) {
	reports, ok := s.exportReports(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	_ = WriteGeoJSON(w, reports)
}

// HandleStats returns per-zone statistics: GET /api/v1/hotspots/stats?since=&until= (RFC 3339).
func (s *Service) HandleStats(w http.ResponseWriter, r *http.Request) {
	var since, until time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				web.Error(w, r, fmt.Errorf("%s %q: want RFC 3339: %w", p.name, v, errs.ErrInvalid))
				return
			}
			*p.dst = t
		}
	}
	st, err := s.Stats(r.Context(), since, until)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, st)
}
