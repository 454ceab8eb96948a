package auth

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lookoutfire/lookout/clock"
)

func TestSimCameraTokens(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := openTestStore(t, clk)
	if _, err := st.BootstrapAdmin(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sim-camera-tokens.yaml")
	read := func() map[string]string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	n, err := st.SimCameraTokens(ctx, "admin", []string{"cam-1", "cam-2"}, path)
	if err != nil || n != 2 {
		t.Fatalf("minted %d, %v", n, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	first := read()
	for _, cam := range []string{"cam-1", "cam-2"} {
		p, err := st.TokenPrincipal(ctx, first[cam])
		if err != nil || p.Role != RoleCamera || p.Device != cam {
			t.Fatalf("%s: %+v %v", cam, p, err)
		}
	}

	// Next start: valid tokens are kept; a new camera gets one.
	if n, err := st.SimCameraTokens(ctx, "admin", []string{"cam-1", "cam-2", "cam-3"}, path); err != nil || n != 1 {
		t.Fatalf("minted %d, %v", n, err)
	}
	second := read()
	if second["cam-1"] != first["cam-1"] || second["cam-3"] == "" {
		t.Fatalf("tokens %v", second)
	}

	// A revoked token is replaced, and the stale one is not left behind.
	toks, _ := st.ListTokens(ctx, "admin")
	for _, tk := range toks {
		if tk.Device == "cam-2" {
			if err := st.RevokeToken(ctx, tk.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, _ := st.SimCameraTokens(ctx, "admin", []string{"cam-1", "cam-2", "cam-3"}, path); n != 1 {
		t.Fatalf("revoked token not replaced: minted %d", n)
	}
	if p, err := st.TokenPrincipal(ctx, read()["cam-2"]); err != nil || p.Device != "cam-2" {
		t.Fatalf("%+v %v", p, err)
	}

	// Expired tokens (token_ttl) are replaced too, and replacing revokes the old rows.
	clk.Advance(DefaultConfig().TokenTTL + time.Hour)
	if n, _ := st.SimCameraTokens(ctx, "admin", []string{"cam-1", "cam-2", "cam-3"}, path); n != 3 {
		t.Fatalf("expired tokens: minted %d, want 3", n)
	}
	toks, _ = st.ListTokens(ctx, "admin")
	if len(toks) != 3 {
		t.Fatalf("%d tokens after reissue, want 3 (stale ones revoked): %+v", len(toks), toks)
	}
	es, _ := st.AuditList(ctx, AuditQuery{Action: "token.camera.bootstrap"})
	if len(es) != 4 {
		t.Fatalf("%d audit entries, want 4", len(es))
	}
}
