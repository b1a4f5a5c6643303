package tokens

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadKeyDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSigningKey(filepath.Join(dir, "legacy.pem"), authKey()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	ec, err := GenerateKeyFile(dir, ES256, at)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ec.Name, "20261201T093000Z-es256-") {
		t.Errorf("generated key file is named %q", ec.Name)
	}
	der, err := x509.MarshalPKIXPublicKey(attackerKeys()[EdDSA].Public())
	if err != nil {
		t.Fatal(err)
	}
	write("retired.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	write(".hidden.pem", []byte("junk"))
	write("README", []byte("not a key"))
	write("key.pem.tmp", []byte("half written"))

	keys, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	want := []string{"legacy.pem", "retired.pem", ec.Name} // by ActiveFrom (zero first), then name
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", names, want)
	}
	if keys[1].Private != nil || keys[0].Private == nil || keys[2].Private == nil {
		t.Error("private/public halves mixed up")
	}
	if !keys[2].ActiveFrom.Equal(at) || !keys[0].ActiveFrom.IsZero() {
		t.Errorf("ActiveFrom = %v and %v", keys[2].ActiveFrom, keys[0].ActiveFrom)
	}
	info, err := os.Stat(filepath.Join(dir, ec.Name))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("generated key file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}

	// A broken key file stops the load rather than publishing less.
	write("broken.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	if _, err := LoadKeyDir(dir); err == nil || !strings.Contains(err.Error(), "broken.pem") {
		t.Errorf("LoadKeyDir with a broken file = %v, want an error naming it", err)
	}
}

func TestLoadOrGenerateKeyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	first, err := LoadOrGenerateKeyDir(dir, EdDSA, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Private == nil {
		t.Fatalf("first start: %+v, want one generated key", first)
	}
	if alg, _ := AlgOf(first[0].Public); alg != EdDSA {
		t.Errorf("generated an %s key, want EdDSA", alg)
	}
	again, err := LoadOrGenerateKeyDir(dir, EdDSA, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || mustJWK(t, again[0].Public).Kid != mustJWK(t, first[0].Public).Kid {
		t.Fatalf("second start generated another key instead of loading the first")
	}
}
