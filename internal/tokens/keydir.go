package tokens

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Key is one key of auth's key ring.
type Key struct {
	// Private signs; nil for a retired key whose public half is kept in the
	// JWK set only so that tokens it signed still verify until they expire.
	Private crypto.Signer
	Public  crypto.PublicKey
	// ActiveFrom is when the key may start signing; zero means at once. A
	// key published before it signs gives every verifier's cache time to
	// learn it, so a rotation breaks no one.
	ActiveFrom time.Time
	// Name is where the key came from (its file name), for logs and as the
	// tie-breaker between keys with the same ActiveFrom.
	Name string
}

// activeFromName matches the activation time that starts a key file's name,
// as written by KeyFileName: 20261127T100000Z-….
var activeFromName = regexp.MustCompile(`^(\d{8}T\d{6}Z)`)

const nameTimeLayout = "20060102T150405Z"

// KeyFileName is the file name `kinoteka keys generate` gives a key: its
// activation time (UTC, so the lexical order of names is their order in
// time), the algorithm, and the start of its kid to tell keys apart.
func KeyFileName(activeFrom time.Time, alg, kid string) string {
	return fmt.Sprintf("%s-%s-%s.pem", activeFrom.UTC().Format(nameTimeLayout), strings.ToLower(alg), kid[:min(8, len(kid))])
}

// LoadKeyDir reads the key ring from the *.pem files of dir (not its
// subfolders; names starting with a dot are skipped). A file holding a
// private key gives a key that may sign; a file holding only public keys
// ("PUBLIC KEY" blocks or certificates) gives retired keys, published but
// never signing. A name that starts with a time such as 20261127T100000Z-
// sets ActiveFrom; other names activate at once. Any unreadable file is an
// error: a half-loaded ring could publish too little.
func LoadKeyDir(dir string) ([]Key, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var keys []Key
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || filepath.Ext(name) != ".pem" {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var active time.Time
		if m := activeFromName.FindStringSubmatch(name); m != nil {
			if active, err = time.Parse(nameTimeLayout, m[1]); err != nil {
				return nil, fmt.Errorf("tokens: %s: bad activation time in the name: %w", path, err)
			}
		}
		if priv, err := ParsePrivateKeyPEM(b); err == nil {
			keys = append(keys, Key{Private: priv, Public: priv.Public(), ActiveFrom: active, Name: name})
			continue
		} else if strings.Contains(string(b), "PRIVATE KEY-----") {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pubs, err := ParsePublicKeysPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, pub := range pubs {
			keys = append(keys, Key{Public: pub, ActiveFrom: active, Name: name})
		}
	}
	sortKeys(keys)
	return keys, nil
}

// GenerateKeyFile writes a new private key for alg into dir (created if
// missing, mode 0700), named by KeyFileName, and returns it.
func GenerateKeyFile(dir, alg string, activeFrom time.Time) (Key, error) {
	priv, err := GenerateKey(alg)
	if err != nil {
		return Key{}, err
	}
	jwk, err := NewJWK(priv.Public())
	if err != nil {
		return Key{}, err
	}
	activeFrom = activeFrom.UTC().Truncate(time.Second)
	name := KeyFileName(activeFrom, alg, jwk.Kid)
	if err := WriteSigningKey(filepath.Join(dir, name), priv); err != nil {
		return Key{}, err
	}
	return Key{Private: priv, Public: priv.Public(), ActiveFrom: activeFrom, Name: name}, nil
}

// LoadOrGenerateKeyDir loads the ring in dir and, when it holds no private
// key (a first start in development), generates one for alg, active at once.
func LoadOrGenerateKeyDir(dir, alg string, now time.Time) ([]Key, error) {
	keys, err := LoadKeyDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if slices.ContainsFunc(keys, func(k Key) bool { return k.Private != nil }) {
		return keys, nil
	}
	k, err := GenerateKeyFile(dir, alg, now)
	if err != nil {
		return nil, err
	}
	keys = append(keys, k)
	sortKeys(keys)
	return keys, nil
}

// sortKeys orders keys from oldest to newest: by ActiveFrom, then Name.
func sortKeys(keys []Key) {
	slices.SortStableFunc(keys, func(a, b Key) int {
		if c := a.ActiveFrom.Compare(b.ActiveFrom); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}
