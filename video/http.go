package video

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

// maxSDP caps an SDP offer; real offers are a few KB.
const maxSDP = 64 << 10

// readOffer reads an application/sdp body.
func readOffer(r *http.Request) (string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/sdp" {
		return "", fmt.Errorf("%w: Content-Type must be application/sdp", ErrBadOffer)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSDP+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) { // the router's body limit, when below maxSDP
		return "", fmt.Errorf("video: SDP offer over the %d-byte request limit: %w", mbe.Limit, errs.ErrTooLarge)
	}
	if err != nil {
		return "", fmt.Errorf("%w: read body: %w", ErrBadOffer, err)
	}
	if len(b) > maxSDP {
		return "", fmt.Errorf("video: SDP offer over %d bytes: %w", maxSDP, errs.ErrTooLarge)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(b)), "v=0") {
		return "", fmt.Errorf("%w: not an SDP document", ErrBadOffer)
	}
	return string(b), nil
}

func writeAnswer(w http.ResponseWriter, location, answer string) {
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// HandleWHIP is POST /api/v1/streams/{camera}/whip: a camera publishes its H.264
// stream (SDP offer in, 201 + Location + SDP answer out).
func (m *Manager) HandleWHIP(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("camera")
	if err := ownCamera(r, camera); err != nil {
		web.Error(w, r, err)
		return
	}
	offer, err := readOffer(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	id, answer, err := m.addPublisher(r.Context(), camera, offer)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	writeAnswer(w, "/api/v1/streams/"+camera+"/whip/"+id, answer)
}

// ownCamera refuses a camera token acting for another camera: a camera token
// speaks for its own device only.
func ownCamera(r *http.Request, camera string) error {
	if p, ok := auth.PrincipalFrom(r.Context()); ok && p.Role == auth.RoleCamera && p.Device != camera {
		return fmt.Errorf("video: token of camera %q cannot act for %q: %w", p.Device, camera, errs.ErrForbidden)
	}
	return nil
}

// HandleWHIPDelete is DELETE /api/v1/streams/{camera}/whip/{session}: the camera stops publishing.
func (m *Manager) HandleWHIPDelete(w http.ResponseWriter, r *http.Request) {
	if err := ownCamera(r, r.PathValue("camera")); err != nil {
		web.Error(w, r, err)
		return
	}
	if err := m.deletePublisher(r.PathValue("camera"), r.PathValue("session")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// HandleWHEP is POST /api/v1/streams/{camera}/whep: a viewer asks to watch (SDP
// offer in, 201 + Location + SDP answer out; 503 past the viewer limits or when an
// RTSP camera cannot be pulled).
func (m *Manager) HandleWHEP(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("camera")
	offer, err := readOffer(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	id, answer, err := m.addViewer(r.Context(), camera, offer)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	writeAnswer(w, "/api/v1/streams/"+camera+"/whep/"+id, answer)
}

// HandleWHEPDelete is DELETE /api/v1/streams/{camera}/whep/{session}: the viewer leaves, freeing its slot.
func (m *Manager) HandleWHEPDelete(w http.ResponseWriter, r *http.Request) {
	if err := m.deleteViewer(r.PathValue("camera"), r.PathValue("session")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ListResponse is the body of GET /api/v1/streams.
type ListResponse struct {
	Streams []StreamStats `json:"streams"`
}

// HandleList is GET /api/v1/streams: every stream's source state, viewers, bitrate, packets and drops.
func (m *Manager) HandleList(w http.ResponseWriter, r *http.Request) {
	web.JSON(w, http.StatusOK, ListResponse{Streams: m.Stats()})
}

//go:embed viewer.html
var viewerPage []byte

// viewerCSP allows only the page's own inline script (by hash) and same-origin fetches.
func viewerCSP() string {
	return web.PageCSP(viewerPage, "connect-src 'self'; media-src 'self' blob:; img-src 'self' data:")
}

// HandleViewerPage is GET /live/{camera}: a self-contained page (no external assets)
// that plays the camera over WHEP; the control-room app reuses it.
func (m *Manager) HandleViewerPage(w http.ResponseWriter, r *http.Request) {
	if !m.cams.IsCamera(r.PathValue("camera")) {
		web.Error(w, r, fmt.Errorf("%w: %q", ErrUnknownCamera, r.PathValue("camera")))
		return
	}
	web.ServePage(w, viewerPage, m.csp)
}
