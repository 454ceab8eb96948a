// Package rtspurl holds the one rule for a camera's RTSP address, shared by
// the device registry (rtsp_url) and the video relay (video.sources and the
// URLs the registry hands it), so an address one accepts the other can pull.
package rtspurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Check accepts what the relay's ffmpeg can pull: an rtsp:// or rtsps:// URL
// with a host, lower-case scheme, no white space. The URL may carry
// credentials, so errors never repeat it.
func Check(raw string) error {
	const want = "want rtsp://[user:pass@]host[:port]/path (or rtsps://)"
	if strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("contains white space; %s", want)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Errorf("not a URL (%v); %s", err, want)
	}
	switch {
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return fmt.Errorf("scheme %q; %s", u.Scheme, want)
	case !strings.HasPrefix(raw, u.Scheme+":"): // ffmpeg matches protocol names case-sensitively
		return fmt.Errorf("scheme must be lower case; %s", want)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("no host; %s", want)
	}
	return nil
}
