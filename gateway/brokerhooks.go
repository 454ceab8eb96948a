package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"

	"github.com/lookoutfire/lookout/broker"
)

// brokerHooks returns the embedded broker's authentication/ACL hooks: device
// identity and ACLs normally, allow-all only with auth.insecure_dev.
func (a *App) brokerHooks() []mqtt.Hook {
	if a.cfg.Auth.InsecureDev || a.sec == nil {
		return []mqtt.Hook{new(mochiauth.AllowHook)}
	}
	return []mqtt.Hook{broker.NewAuthHook(a.sec.mqtt)}
}

// secureBroker fills the embedded broker's security options: auth hooks,
// per-connection limits (the packet guard is always on, even in insecure dev
// mode: a malformed packet must never stop the gateway), metrics and the TLS
// listener (mqtt.embedded_tls_addr, client certificates verified against
// mqtt.tls_ca when given: a device may authenticate by a certificate whose CN
// is its id).
func (a *App) secureBroker(o *broker.Options) error {
	c := a.cfg.Auth
	o.Hooks = append(o.Hooks, a.brokerHooks()...)
	o.Limits = broker.Limits{ConnectTimeout: c.MQTTConnectTimeout, ConnPerIPPerMinute: c.MQTTConnPerIPPerMinute, Clock: a.clk}
	o.MaxPacketSize = uint32(c.MQTTMaxPacketSize)
	o.ReceiveMaximum = uint16(c.MQTTReceiveMaximum)
	o.Registerer = a.reg
	if a.cfg.MQTT.EmbeddedTLSAddr == "" {
		return nil
	}
	tc, err := serverTLSConfig(a.cfg.MQTT.TLSCert, a.cfg.MQTT.TLSKey, a.cfg.MQTT.TLSCA)
	if err != nil {
		return fmt.Errorf("mqtt tls: %w", err)
	}
	o.TLSAddr, o.TLSConfig = a.cfg.MQTT.EmbeddedTLSAddr, tc
	return nil
}

// serverTLSConfig loads a server certificate and, with caFile, asks clients
// for a certificate (optional) verified against that CA.
func serverTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificates in " + caFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}
