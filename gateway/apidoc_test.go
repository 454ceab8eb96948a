package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lookoutfire/lookout/internal/testenv"
)

// apiDocRow matches a route row of docs/api.md: "| `METHOD /path` | role | audit | limit |".
var apiDocRow = regexp.MustCompile("^\\| `(GET|POST|PUT|DELETE|PATCH|HEAD) (/[^`]*)` \\|")

// TestAPIDoc keeps docs/api.md in step with the route table: every row of
// routes() has exactly one row in the doc, naming its role and audit action,
// and the doc has no row for a route that is gone. The pattern "/{$}" is
// written as "/".
func TestAPIDoc(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // "METHOD /path" → the doc lines that document it
	for _, line := range strings.Split(string(b), "\n") {
		if m := apiDocRow.FindStringSubmatch(line); m != nil {
			key := m[1] + " " + m[2]
			rows[key] = append(rows[key], line)
		}
	}
	a := testApp(t)
	inTable := map[string]bool{}
	for _, rt := range a.routes() {
		key := rt.Method + " " + strings.ReplaceAll(rt.Pattern, "{$}", "")
		inTable[key] = true
		lines := rows[key]
		switch {
		case len(lines) == 0:
			t.Errorf("docs/api.md: route %q (role %s) has no row \"| `%s` | …\"", key, rt.Role, key)
			continue
		case len(lines) > 1:
			t.Errorf("docs/api.md: route %q has %d rows; want one", key, len(lines))
		}
		cells := strings.Split(lines[0], "|")
		if len(cells) < 4 {
			t.Errorf("docs/api.md: row of %q lacks the role and audit columns: %s", key, lines[0])
			continue
		}
		if role := "`" + string(rt.Role) + "`"; !strings.Contains(cells[2], role) {
			t.Errorf("docs/api.md: row of %q: role column %q, want %s", key, strings.TrimSpace(cells[2]), role)
		}
		audit := strings.TrimSpace(cells[3])
		if rt.Audit != "" && audit != "`"+rt.Audit+"`" {
			t.Errorf("docs/api.md: row of %q: audit column %q, want `%s`", key, audit, rt.Audit)
		}
		if rt.Audit == "" && audit != "—" {
			t.Errorf("docs/api.md: row of %q: audit column %q, want — (the route writes no audit entry)", key, audit)
		}
	}
	for key := range rows {
		if !inTable[key] {
			t.Errorf("docs/api.md documents %q, which is not in the route table (gateway/routes.go)", key)
		}
	}
}
