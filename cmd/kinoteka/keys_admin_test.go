package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/auth"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/tokens"
)

func noEnv(string) string { return "" }

func TestKeysGenerateAndList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ctx := context.Background()
	var out bytes.Buffer
	if err := runKeys(ctx, []string{"generate", "-dir", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alg RS256") {
		t.Errorf("generate said: %s", out.String())
	}
	env := func(k string) string {
		return map[string]string{"AUTH_SIGNING_KEYS_DIR": dir, "AUTH_SIGNING_ALG": "EdDSA"}[k]
	}
	out.Reset()
	if err := runKeys(ctx, []string{"generate", "-activate-in", "1h"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alg EdDSA") {
		t.Errorf("generate with the environment's defaults said: %s", out.String())
	}
	keys, err := tokens.LoadKeyDir(dir)
	if err != nil || len(keys) != 2 {
		t.Fatalf("the folder holds %d keys, %v", len(keys), err)
	}
	if d := time.Until(keys[1].ActiveFrom); d < 59*time.Minute || d > time.Hour {
		t.Errorf("the second key activates in %s, want 1h", d)
	}
	out.Reset()
	if err := runKeys(ctx, []string{"list", "-dir", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "EdDSA") || !strings.Contains(lines[1], "signs from its time") ||
		!strings.Contains(lines[2], "RS256") || !strings.Contains(lines[2], "signs now") {
		t.Errorf("list:\n%s", out.String())
	}
	for _, args := range [][]string{nil, {"rotate"}, {"generate", "-alg", "HS256", "-dir", dir}, {"generate", "extra"}, {"list", "-dir", filepath.Join(dir, "missing")}} {
		if err := runKeys(ctx, args, noEnv, io.Discard, io.Discard); err == nil {
			t.Errorf("keys %v: no error", args)
		}
	}
}

func TestAdminGrantAndRevokeRole(t *testing.T) {
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, auth.Migrations); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	store := auth.NewStore(db)
	if err := store.CreateUser(ctx, auth.User{ID: "0193f6f2-0000-7000-8000-000000000001", Email: "boss@example.com",
		PasswordHash: "x", Status: auth.StatusActive, Locale: "en", Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	roles := func() []string {
		u, err := store.UserByEmail(ctx, "boss@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return u.Roles
	}
	var out bytes.Buffer
	if err := runAdmin(ctx, []string{"grant-role", "-db", url, "Boss@Example.com", "admin"}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(roles(), ","); got != "admin,user" || !strings.Contains(out.String(), "now holds the role admin") {
		t.Errorf("after grant-role: roles %s, said %q", got, out.String())
	}
	env := func(k string) string { return map[string]string{"AUTH_DATABASE_URL": url}[k] }
	if err := runAdmin(ctx, []string{"revoke-role", "boss@example.com", "admin"}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(roles(), ","); got != "user" {
		t.Errorf("after revoke-role: roles %s", got)
	}
	for _, args := range [][]string{nil, {"grant-role", "-db", url, "boss@example.com"}, {"grant-role", "-db", url, "nobody@example.com", "admin"},
		{"grant-role", "-db", url, "boss@example.com", "root"}, {"delete-user", "boss@example.com"}} {
		if err := runAdmin(ctx, args, noEnv, io.Discard, io.Discard); err == nil {
			t.Errorf("admin %v: no error", args)
		}
	}
}
