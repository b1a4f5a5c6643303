package catcher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"time"
)

// SelfSignedPEM makes a self-signed ECDSA P-256 certificate valid for the
// given host names and IP addresses (default "localhost" and 127.0.0.1) for
// 30 days, and returns it and its private key as PEM. Tests and the
// development setup use it, e.g. for Mailpit's --smtp-tls-cert/--smtp-tls-key.
func SelfSignedPEM(hosts ...string) (certPEM, keyPEM []byte, err error) {
	return SelfSignedPEMFor(30*24*time.Hour, hosts...)
}

// SelfSignedPEMFor is SelfSignedPEM with a validity of its own: a
// certificate kept in a volume for as long as the deployment lives
// (kinoteka dev-secrets) needs a longer one than a test's.
func SelfSignedPEMFor(validity time.Duration, hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Kinoteka development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so the certificate itself can be a trusted root (CAFile)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// SelfSignedTLS returns a server tls.Config (TLS 1.2 or newer) holding a new
// self-signed certificate for hosts, and the certificate as PEM for clients
// to trust.
func SelfSignedTLS(hosts ...string) (*tls.Config, []byte, error) {
	certPEM, keyPEM, err := SelfSignedPEM(hosts...)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, errors.Join(errors.New("catcher: self-signed key pair"), err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certPEM, nil
}
