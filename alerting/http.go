package alerting

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

// UserHeader is the default source of the acting user until auth supplies one.
const UserHeader = "X-Lookout-User"

// ErrBadQuery marks a bad filter in a list request.
var ErrBadQuery = fmt.Errorf("query %w", errs.ErrInvalid)

func parseID(r *http.Request) (int64, error) { return web.PathID(r, "id", "alert id") }

func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: time %q (want RFC 3339 or Unix seconds)", ErrBadQuery, v)
}

// HandleList is GET /api/v1/alerts?state=active_unack,active_ack|active|cleared&severity=critical,major&zone=&since=&until=&limit=.
func (e *Engine) HandleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f Filter
	for _, s := range web.SplitList(q.Get("state")) {
		switch State(s) {
		case ActiveUnack, ActiveAck, ClearedUnack, ClearedAck:
			f.States = append(f.States, State(s))
		case "active":
			f.States = append(f.States, ActiveUnack, ActiveAck)
		case "cleared":
			f.States = append(f.States, ClearedUnack, ClearedAck)
		case "unacked":
			f.States = append(f.States, ActiveUnack, ClearedUnack)
		default:
			web.Error(w, r, fmt.Errorf("%w: state %q", ErrBadQuery, s))
			return
		}
	}
	for _, s := range web.SplitList(q.Get("severity")) {
		sev, err := ParseSeverity(s)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		f.Severity = append(f.Severity, sev)
	}
	f.Zone = q.Get("zone")
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		web.Error(w, r, err)
		return
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		web.Error(w, r, err)
		return
	}
	if l := q.Get("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 {
			web.Error(w, r, fmt.Errorf("%w: limit %q", ErrBadQuery, l))
			return
		}
	}
	list, err := e.List(r.Context(), f)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"alerts": list})
}

// HandleGet is GET /api/v1/alerts/{id}: the alert with its escalation chain and audit.
func (e *Engine) HandleGet(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	v, err := e.Get(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, v)
}

// stepBody is the JSON of ack and clear.
type stepBody struct {
	User string `json:"user,omitempty"`
	Note string `json:"note"`
}

func (e *Engine) actingUser(r *http.Request, body stepBody) string {
	if e.user != nil {
		if u := e.user(r); u != "" {
			return u
		}
	}
	if u := r.Header.Get(UserHeader); u != "" {
		return u
	}
	return body.User
}

// maxNote caps the note of a lifecycle step.
const maxNote = 2000

// stepInput reads the body of ack, clear and incident close (strict JSON; an
// empty body is no note) and the acting user.
func (e *Engine) stepInput(r *http.Request, noteRequired bool) (user, note string, err error) {
	var body stepBody
	if r.ContentLength != 0 {
		if err := web.Decode(r, &body); err != nil {
			return "", "", err
		}
	}
	user = e.actingUser(r, body)
	if user == "" {
		return "", "", fmt.Errorf("%w: acting user unknown (auth, %s header or body user)", ErrBadQuery, UserHeader)
	}
	if noteRequired && strings.TrimSpace(body.Note) == "" {
		return "", "", fmt.Errorf("%w: note is required (why it is over)", ErrBadQuery)
	}
	if len(body.Note) > maxNote {
		return "", "", fmt.Errorf("%w: note longer than %d bytes", ErrBadQuery, maxNote)
	}
	return user, body.Note, nil
}

func (e *Engine) handleStep(w http.ResponseWriter, r *http.Request, ack bool) {
	id, err := parseID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	user, note, err := e.stepInput(r, false)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var a Alert
	if ack {
		a, err = e.Ack(r.Context(), id, user, note)
	} else {
		a, err = e.Clear(r.Context(), id, user, note)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, a)
}

// HandleAck is POST /api/v1/alerts/{id}/ack with JSON {"user"?, "note"}.
func (e *Engine) HandleAck(w http.ResponseWriter, r *http.Request) { e.handleStep(w, r, true) }

// HandleClear is POST /api/v1/alerts/{id}/clear with JSON {"user"?, "note"}.
func (e *Engine) HandleClear(w http.ResponseWriter, r *http.Request) { e.handleStep(w, r, false) }

// HandleIncidents is GET /api/v1/incidents?state=open|closed|all&since=
// (defaults: all, the last 7 days). An open incident is listed by
// state=open however long ago its last evidence came: it is still somebody's
// job, so without since the open list has no age limit.
func (e *Engine) HandleIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, err := ParseIncidentState(q.Get("state"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	since, err := parseTime(q.Get("since"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if since.IsZero() && state != IncidentOpen {
		since = e.clk.Now().Add(-7 * 24 * time.Hour)
	}
	list, err := e.Incidents(r.Context(), IncidentFilter{State: state, Since: since})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"incidents": list})
}

// HandleCloseIncident is POST /api/v1/incidents/{id}/close with JSON
// {"user"?, "note"} (note required): the operator close (CloseIncident),
// answered with the closed incident.
func (e *Engine) HandleCloseIncident(w http.ResponseWriter, r *http.Request) {
	id, err := web.PathID(r, "id", "incident id")
	if err != nil {
		web.Error(w, r, err)
		return
	}
	user, note, err := e.stepInput(r, true)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	inc, err := e.CloseIncident(r.Context(), id, user, note)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, inc)
}

// HandleDanger is GET /api/v1/fire-danger: every station's latest FWI and level.
func (e *Engine) HandleDanger(w http.ResponseWriter, r *http.Request) {
	list, err := e.Danger(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"stations": list})
}

// HandleEvents is GET /api/v1/events (SSE with Last-Event-ID resume).
func (e *Engine) HandleEvents(w http.ResponseWriter, r *http.Request) { e.hub.ServeSSE(w, r) }

// HandleCAP is GET /api/v1/alerts/{id}/cap: the alert as a CAP 1.2 document.
func (e *Engine) HandleCAP(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	a, err := e.st.get(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	b, err := MarshalCAP(e.CAP(a))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	_, _ = w.Write(b)
}

// HandleCAPFeed is GET /api/v1/cap/feed: an Atom feed of active alerts linking their CAP documents.
func (e *Engine) HandleCAPFeed(w http.ResponseWriter, r *http.Request) {
	list, err := e.List(r.Context(), Filter{States: []State{ActiveUnack, ActiveAck}, Limit: 500})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	base := strings.TrimRight(e.cfg.Notify.BaseURL, "/")
	now := e.clk.Now()
	feed := atomFeed{ID: "urn:lookout:" + e.cfg.Notify.CAPSender + ":cap-feed", Title: "Lookout active fire alerts (CAP 1.2)",
		Updated: now.Format(time.RFC3339), Author: atomAuthor{Name: e.cfg.Notify.CAPSender},
		Link: atomLink{Href: base + "/api/v1/cap/feed", Rel: "self"}}
	for _, a := range list {
		_, sev := capSeverity(a.Severity)
		feed.Entries = append(feed.Entries, atomEntry{
			ID: "urn:lookout:" + e.CAPIdentifier(a.ID), Title: fmt.Sprintf("[%s] %s", sev, a.Message),
			Updated: a.LastSeen.Format(time.RFC3339), Summary: fmt.Sprintf("%s %s zone %s", a.Source, a.Type, a.Zone),
			Link: atomLink{Href: fmt.Sprintf("%s/api/v1/alerts/%d/cap", base, a.ID), Rel: "alternate", Type: "application/cap+xml"},
		})
	}
	b, err := xml.MarshalIndent(feed, "", "  ")
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
