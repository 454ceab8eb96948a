package ingest

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// readProtocolDoc returns docs/protocol.md, the reference device makers read.
func readProtocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProtocolDocExamples decodes every example payload in docs/protocol.md on
// its topic, so the reference can never show a message the gateway refuses, and
// checks that every class and kind has one.
func TestProtocolDocExamples(t *testing.T) {
	doc := readProtocolDoc(t)
	re := regexp.MustCompile("(?s)Topic `([^`]+)`[^\n]*:\n\n```json\n(.*?)```")
	covered := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		topic, payload := m[1], m[2]
		r, err := Decode("fire", topic, []byte(payload), testNow, testLimits())
		if err != nil {
			t.Errorf("doc example on %s refused: %v", topic, err)
			continue
		}
		checkInvariants(t, topic, []byte(payload), r, testNow, testLimits())
		covered[string(r.Class)+"/"+string(r.Kind)] = true
	}
	for _, c := range Classes {
		for _, k := range c.Kinds() {
			if !covered[string(c)+"/"+string(k)] {
				t.Errorf("docs/protocol.md has no example for %s %s", c, k)
			}
		}
	}
}

// TestProtocolDocCoversSchema: every field, event name, label and reason the
// code knows is documented.
func TestProtocolDocCoversSchema(t *testing.T) {
	doc := readProtocolDoc(t)
	want := map[string]bool{}
	for _, c := range Classes {
		for _, k := range c.Kinds() {
			for _, f := range schemaFor(c, k).fields {
				want[f.name] = true
				for _, e := range f.enum {
					want[e] = true
				}
			}
		}
	}
	for _, r := range Reasons {
		want[string(r)] = true
	}
	for w := range want {
		if !strings.Contains(doc, "`"+w+"`") {
			t.Errorf("docs/protocol.md does not mention `%s`", w)
		}
	}
}
