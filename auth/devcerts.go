package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevCertFiles names what WriteDevCerts produced.
type DevCertFiles struct {
	CA, CAKey, Cert, Key string
	Devices              map[string][2]string // device id → cert, key
}

// WriteDevCerts makes a throwaway local CA, a server certificate for hosts
// (IPs and DNS names, e.g. 127.0.0.1, ::1, localhost) and one client
// certificate per device id (CN = device id) in dir. For tests and `make run`
// only: the CA key sits next to the certificates.
func WriteDevCerts(dir string, hosts, devices []string, now time.Time) (DevCertFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevCertFiles{}, fmt.Errorf("auth: dev certs: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DevCertFiles{}, fmt.Errorf("auth: dev certs: %w", err)
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "Lookout dev CA", Organization: []string{"Lookout (development only)"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return DevCertFiles{}, fmt.Errorf("auth: dev certs: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return DevCertFiles{}, fmt.Errorf("auth: dev certs: %w", err)
	}
	f := DevCertFiles{CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem"),
		Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"), Devices: map[string][2]string{}}
	if err := writePEM(f.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return f, err
	}
	if err := writeKey(f.CAKey, caKey); err != nil {
		return f, err
	}
	srv := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "lookout-gateway"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	if err := issue(f.Cert, f.Key, srv, ca, caKey); err != nil {
		return f, err
	}
	for _, id := range devices {
		if !ValidUsername(id) {
			return f, fmt.Errorf("device id %q: %w", id, ErrInvalidInput)
		}
		cl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: id},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		c, k := filepath.Join(dir, "device-"+id+".pem"), filepath.Join(dir, "device-"+id+"-key.pem")
		if err := issue(c, k, cl, ca, caKey); err != nil {
			return f, err
		}
		f.Devices[id] = [2]string{c, k}
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func issue(certPath, keyPath string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: dev certs: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("auth: dev certs: %w", err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return fmt.Errorf("auth: dev certs: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
