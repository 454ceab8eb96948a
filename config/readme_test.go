package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every configuration key must be documented in the README (regenerate the table
// with `go run ./internal/configdoc`).
func TestEveryKeyIsInTheREADME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range Keys() {
		path, _, _ := strings.Cut(k, "\t")
		if !strings.Contains(readme, "`"+path+"`") {
			t.Errorf("README.md does not document config key %s (run: go run ./internal/configdoc)", path)
		}
	}
}
