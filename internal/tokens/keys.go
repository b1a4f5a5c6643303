// Package tokens issues access tokens (auth, which alone holds the private
// keys) and verifies them against a cached JWK set (films and anyone else).
// Tokens are JWTs per RFC 9068: header typ "at+jwt", signed RS256 by default,
// or ES256 (ECDSA P-256) or EdDSA (Ed25519) when auth is given such keys.
package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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

// The signature algorithms Kinoteka signs and verifies with (RFC 7518,
// RFC 8037). Each key type has exactly one: the algorithm is a property of
// the key, never chosen by a token's header.
const (
	RS256 = "RS256" // RSA PKCS#1 v1.5 with SHA-256, keys of 2048 bits or more; the default
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
	EdDSA = "EdDSA" // Ed25519
)

// Algorithms lists the supported algorithms, the default first.
var Algorithms = []string{RS256, ES256, EdDSA}

// Key size bounds for RSA: below 2048 bits is breakable in practice (NIST SP
// 800-131A); above 8192 only makes verification slow enough to be a lever
// for denial of service.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// JWK is one public key as published in the JWK set (RFC 7517; RSA members
// per RFC 7518 §6.3, EC per §6.2, OKP per RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKSet is the document served at /.well-known/jwks.json.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

var b64 = base64.RawURLEncoding

// AlgOf returns the one algorithm a public key signs with, or an error for a
// key Kinoteka does not accept (wrong type, curve or size).
func AlgOf(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return "", fmt.Errorf("tokens: %d-bit RSA key (%d to %d bits accepted)", bits, minRSABits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return "", errors.New("tokens: RSA key with a bad public exponent")
		}
		return RS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("tokens: ECDSA key on %s (only P-256, for ES256)", k.Curve.Params().Name)
		}
		return ES256, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("tokens: Ed25519 key of the wrong size")
		}
		return EdDSA, nil
	default:
		return "", fmt.Errorf("tokens: %T keys are not supported (RSA, ECDSA P-256 or Ed25519)", pub)
	}
}

// NewJWK describes pub as a signing key, with its RFC 7638 thumbprint as kid
// (so the kid is the same wherever and whenever the key is loaded).
func NewJWK(pub crypto.PublicKey) (JWK, error) {
	alg, err := AlgOf(pub)
	if err != nil {
		return JWK{}, err
	}
	var jwk JWK
	// RFC 7638: the required members in lexicographic order, no whitespace.
	var canonical string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		jwk = JWK{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
		canonical = `{"e":"` + jwk.E + `","kty":"RSA","n":"` + jwk.N + `"}`
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y, each coordinate 32 bytes
		if err != nil {
			return JWK{}, fmt.Errorf("tokens: %w", err)
		}
		jwk = JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:])}
		canonical = `{"crv":"P-256","kty":"EC","x":"` + jwk.X + `","y":"` + jwk.Y + `"}`
	case ed25519.PublicKey:
		jwk = JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k)}
		canonical = `{"crv":"Ed25519","kty":"OKP","x":"` + jwk.X + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	jwk.Use, jwk.Alg, jwk.Kid = "sig", alg, b64.EncodeToString(sum[:])
	return jwk, nil
}

// PublicJWK is NewJWK for an RSA key of at least 2048 bits, which cannot fail.
// (Smaller keys still get a JWK, for tests that must show they are refused.)
func PublicJWK(pub *rsa.PublicKey) JWK {
	n := b64.EncodeToString(pub.N.Bytes())
	e := b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return JWK{Kty: "RSA", Use: "sig", Alg: RS256, Kid: b64.EncodeToString(sum[:]), N: n, E: e}
}

// Key turns a JWK back into a public key and returns the algorithm it
// verifies. A JWK whose alg member names another algorithm than its key type
// signs with is refused (RFC 8725 §3.1: bind the algorithm to the key).
func (k JWK) Key() (crypto.PublicKey, string, error) {
	var pub crypto.PublicKey
	switch k.Kty {
	case "RSA":
		n, err := b64.DecodeString(k.N)
		if err != nil {
			return nil, "", fmt.Errorf("tokens: key %q: bad n: %w", k.Kid, err)
		}
		e, err := b64.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, "", fmt.Errorf("tokens: key %q: bad e", k.Kid)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	case "EC":
		if k.Crv != "P-256" {
			return nil, "", fmt.Errorf("tokens: key %q: curve %q is not P-256", k.Kid, k.Crv)
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, "", fmt.Errorf("tokens: key %q: bad x or y", k.Kid)
		}
		ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", fmt.Errorf("tokens: key %q: %w", k.Kid, err)
		}
		pub = ec
	case "OKP":
		x, err := b64.DecodeString(k.X)
		if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("tokens: key %q: not an Ed25519 key", k.Kid)
		}
		pub = ed25519.PublicKey(x)
	default:
		return nil, "", fmt.Errorf("tokens: key %q: kty %q is not supported", k.Kid, k.Kty)
	}
	alg, err := AlgOf(pub)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: key %q: %w", k.Kid, err)
	}
	if k.Alg != "" && k.Alg != alg {
		return nil, "", fmt.Errorf("tokens: key %q: alg %q does not match its %s key", k.Kid, k.Alg, k.Kty)
	}
	return pub, alg, nil
}

// ParseJWKSet decodes a JWK set document.
func ParseJWKSet(b []byte) (JWKSet, error) {
	var set JWKSet
	if err := json.Unmarshal(b, &set); err != nil {
		return JWKSet{}, fmt.Errorf("tokens: JWK set: %w", err)
	}
	return set, nil
}

// ParsePrivateKeyPEM reads the first private key of a PEM document: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// It refuses keys AlgOf refuses.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("tokens: no private key PEM block")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue // e.g. "EC PARAMETERS", which openssl writes first
		}
		if err != nil {
			return nil, fmt.Errorf("tokens: %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("tokens: %T is not a signing key", key)
		}
		if _, err := AlgOf(signer.Public()); err != nil {
			return nil, err
		}
		return signer, nil
	}
}

// LoadSigningKey reads a private key of any supported type from a PEM file.
func LoadSigningKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// LoadKey reads an RSA private key from a PEM file (PKCS#8 or PKCS#1).
func LoadKey(path string) (*rsa.PrivateKey, error) {
	key, err := LoadSigningKey(path)
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: %s: not an RSA key", path)
	}
	return rk, nil
}

// GenerateKey makes a new private key for alg: RSA 2048 bits for RS256
// (NIST's floor, and the fastest RSA to verify), P-256 for ES256, Ed25519
// for EdDSA.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, minRSABits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	default:
		return nil, fmt.Errorf("tokens: algorithm %q is not one of RS256, ES256, EdDSA", alg)
	}
}

// LoadOrGenerateSigningKey loads the key at path or, when the file does not
// exist, generates one for alg and writes it there (mode 0600). A file that
// exists but cannot be read as a key is an error, never replaced. For
// development and the embedded mode; production mounts its keys.
func LoadOrGenerateSigningKey(path, alg string) (crypto.Signer, error) {
	key, err := LoadSigningKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if key, err = GenerateKey(alg); err != nil {
		return nil, err
	}
	if err := WriteSigningKey(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadOrGenerateKey is LoadOrGenerateSigningKey for an RSA (RS256) key.
func LoadOrGenerateKey(path string) (*rsa.PrivateKey, error) {
	key, err := LoadOrGenerateSigningKey(path, RS256)
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: %s: not an RSA key", path)
	}
	return rk, nil
}

// WriteSigningKey stores key as PKCS#8 PEM at path, readable by its owner
// only; the file appears whole or not at all (written aside, then renamed).
func WriteSigningKey(path string, key crypto.Signer) error {
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

// ParsePublicKeysPEM reads every public key ("PUBLIC KEY" or "RSA PUBLIC
// KEY" blocks, or certificates) in a PEM document; each must be of a type
// AlgOf accepts.
func ParsePublicKeysPEM(b []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
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
		if _, err := AlgOf(key); err != nil {
			return nil, fmt.Errorf("tokens: public key PEM: %w", err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("tokens: no public key found in PEM")
	}
	return keys, nil
}
