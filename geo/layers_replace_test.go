package geo

import (
	"testing"
)

// OnReplace callbacks run after a successful swap only, with the layer name.
func TestOnReplaceRunsAfterSuccessfulSwap(t *testing.T) {
	l, err := NewLayers(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	l.OnReplace(func(layer string) {
		if l.Current().Counts()[layer] != 1 {
			t.Errorf("callback ran before the new %s layer was in force", layer)
		}
		got = append(got, layer)
	})
	good := []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"f1"},
	 "geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31]]]}}]}`)
	if err := l.Replace(LayerForests, good, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Replace(LayerForests, []byte(`{"type":"FeatureCollection","features":[]}`), ""); err == nil {
		t.Fatal("empty layer accepted")
	}
	if len(got) != 1 || got[0] != LayerForests {
		t.Fatalf("callbacks = %v, want exactly [forests]", got)
	}
}
