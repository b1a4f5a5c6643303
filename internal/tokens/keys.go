// Package tokens issues access tokens (auth, which alone holds the private
// key) and verifies them against a cached JWK set (films and anyone else).
// Tokens are JWTs per RFC 9068: header typ "at+jwt", signed RS256.
package tokens

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
)

// JWK is one RSA public key as published in the JWK set (RFC 7517).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKSet is the document served at /.well-known/jwks.json.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

var b64 = base64.RawURLEncoding

// PublicJWK describes pub as a signing key with its RFC 7638 thumbprint as kid.
func PublicJWK(pub *rsa.PublicKey) JWK {
	n := b64.EncodeToString(pub.N.Bytes())
	e := b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	// RFC 7638: the required members, lexicographic order, no whitespace.
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return JWK{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: b64.EncodeToString(sum[:]), N: n, E: e}
}

// PublicKey turns a JWK back into an RSA public key.
func (k JWK) PublicKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("tokens: key %q: kty %q is not RSA", k.Kid, k.Kty)
	}
	n, err := b64.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("tokens: key %q: bad n: %w", k.Kid, err)
	}
	e, err := b64.DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("tokens: key %q: bad e", k.Kid)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("tokens: key %q: %d-bit modulus is too small", k.Kid, pub.N.BitLen())
	}
	return pub, nil
}

// ParseJWKSet decodes a JWK set document.
func ParseJWKSet(b []byte) (JWKSet, error) {
	var set JWKSet
	if err := json.Unmarshal(b, &set); err != nil {
		return JWKSet{}, fmt.Errorf("tokens: JWK set: %w", err)
	}
	return set, nil
}

// LoadKey reads an RSA private key from a PEM file (PKCS#8 or PKCS#1).
func LoadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("tokens: %s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("tokens: %s: PEM block %q is not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: %s: not an RSA key", path)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("tokens: %s: %d-bit key is too small (2048 at least)", path, rk.N.BitLen())
	}
	return rk, nil
}

// LoadOrGenerateKey loads the key at path or, when the file does not exist,
// generates a 2048-bit key and writes it there (mode 0600). For development
// and the embedded mode; production mounts a key file.
func LoadOrGenerateKey(path string) (*rsa.PrivateKey, error) {
	key, err := LoadKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := WriteKey(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// WriteKey stores key as PKCS#8 PEM at path, readable by its owner only.
func WriteKey(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ParsePublicKeysPEM reads every RSA public key ("PUBLIC KEY" or
// "RSA PUBLIC KEY" blocks, or certificates) in a PEM document.
func ParsePublicKeysPEM(b []byte) ([]*rsa.PublicKey, error) {
	var keys []*rsa.PublicKey
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokens: public key PEM: %w", err)
		}
		rk, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("tokens: public key PEM: %T is not an RSA key", key)
		}
		if rk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("tokens: public key PEM: %d-bit key is too small", rk.N.BitLen())
		}
		keys = append(keys, rk)
	}
	if len(keys) == 0 {
		return nil, errors.New("tokens: no public key found in PEM")
	}
	return keys, nil
}
