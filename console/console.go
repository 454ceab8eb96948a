// Package console serves the control-room page: active alerts with an Ack
// button, open incidents, cameras (linking to the live viewer) and fire
// danger, kept current by the event stream. It is one self-contained HTML
// file (no external assets, a strict Content-Security-Policy) over the same
// /api/v1 routes every other client uses, so it holds no state and needs no
// build step.
package console

import (
	_ "embed"
	"net/http"

	"github.com/lookoutfire/lookout/web"
)

//go:embed console.html
var page []byte

// csp allows exactly the page's one inline script (by hash), its inline
// styles and calls back to the gateway; nothing else loads or runs.
var csp = web.PageCSP(page, "connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")

// Handle is GET /console. The page itself is public (it holds no data): it
// asks /api/v1/me who is logged in and offers the login form otherwise, and
// every list it shows comes from an authorised API call.
func Handle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	web.ServePage(w, page, csp)
}
