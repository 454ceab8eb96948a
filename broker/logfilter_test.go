package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// mochi's per-packet error line drops to debug and loses the packet (its
// payload); every other line passes as it was.
func TestPacketLogFilter(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(packetLogFilter{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})}).With("component", "mqtt-broker")
		log.Warn("error processing packet", "error", "not authorized", "client", "smoke-a", "pk", "PAYLOAD-SECRET")
		log.Warn("something else", "pk", "kept")
		out := buf.String()
		if strings.Contains(out, "PAYLOAD-SECRET") {
			t.Errorf("level %v: the packet reached the log: %s", level, out)
		}
		if !strings.Contains(out, `msg="something else"`) || !strings.Contains(out, "pk=kept") || !strings.Contains(out, "component=mqtt-broker") {
			t.Errorf("level %v: other lines changed: %s", level, out)
		}
		debugLine := strings.Contains(out, `level=DEBUG msg="error processing packet"`) && strings.Contains(out, "client=smoke-a")
		if debugLine != (level == slog.LevelDebug) {
			t.Errorf("level %v: packet error line at debug %v: %s", level, debugLine, out)
		}
		if strings.Contains(out, `level=WARN msg="error processing packet"`) {
			t.Errorf("level %v: still a warning: %s", level, out)
		}
	}
}
