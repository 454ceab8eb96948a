package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lookoutfire/lookout/auth"
)

// Authenticator checks MQTT credentials and counts refusals; *auth.MQTTAuth
// implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, req auth.ConnectRequest) (auth.MQTTIdentity, error)
	Refuse(who, remote string, rf *auth.Refusal)
}

// AuthHook makes the embedded broker authenticate every CONNECT (password, or a
// client certificate verified by the listener's CA whose CN is the device id)
// and enforce the per-identity ACL on every publish, subscribe and delivery.
// Anonymous clients are refused. It replaces mochi's allow-all hook.
type AuthHook struct {
	mqtt.HookBase
	auth Authenticator
	ids  sync.Map // *mqtt.Client → auth.MQTTIdentity
}

// NewAuthHook wraps an authenticator as a mochi hook.
func NewAuthHook(a Authenticator) *AuthHook { return &AuthHook{auth: a} }

// ID names the hook for mochi.
func (h *AuthHook) ID() string { return "lookout-auth" }

// Provides lists the events the hook handles.
func (h *AuthHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect}, []byte{b})
}

// OnConnectAuthenticate runs on the client's goroutine before CONNACK.
func (h *AuthHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	req := auth.ConnectRequest{Username: string(pk.Connect.Username), Password: pk.Connect.Password,
		ClientID: cl.ID, Remote: cl.Net.Remote, HasWill: pk.Connect.WillFlag, WillTopic: pk.Connect.WillTopic}
	if cs, ok := cl.Net.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		// Only a chain verified against the configured client CA counts.
		if len(st.VerifiedChains) > 0 && len(st.PeerCertificates) > 0 {
			req.CertCN = st.PeerCertificates[0].Subject.CommonName
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := h.auth.Authenticate(ctx, req)
	if err != nil {
		return false
	}
	h.ids.Store(cl, id)
	return true
}

// OnACLCheck decides publishes (write) and subscriptions/deliveries (read).
func (h *AuthHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	v, ok := h.ids.Load(cl)
	if !ok {
		return false
	}
	id := v.(auth.MQTTIdentity)
	var allowed bool
	reason := auth.ReasonACLSubscribe
	switch {
	case write:
		allowed, reason = id.MayPublish(topic), auth.ReasonACLPublish
	case strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$share/"):
		allowed = id.MaySubscribe(topic)
	default:
		allowed = id.MayRead(topic)
	}
	if !allowed {
		h.auth.Refuse(id.Username, cl.Net.Remote, &auth.Refusal{Reason: reason, Detail: "topic " + truncate(topic, 200)})
	}
	return allowed
}

// OnDisconnect forgets the identity.
func (h *AuthHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.ids.Delete(cl) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
