package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"kinoteka/internal/e2e"
	"kinoteka/internal/testkit"
)

// freeArgs puts every part of the embedded system on a loopback port that
// was free a moment ago; fixed ports (rather than :0) keep the issuer URL the
// same across a restart.
func freeArgs(t testing.TB, dataDir string) []string {
	args := []string{"-data", dataDir, "-log-level", "warn"}
	for _, flag := range []string{"-kafka-addr", "-auth-addr", "-films-addr", "-mailer-addr", "-smtp-addr", "-mail-ui-addr", "-web-addr",
		"-auth-ops-addr", "-films-ops-addr", "-web-ops-addr"} {
		args = append(args, flag, testkit.FreeAddr(t))
	}
	return args
}

var bannerURL = regexp.MustCompile(`(?m)^\s+(auth|films|mail)\s+(\S+)(?:\s+inbox: (\S+))?`)

// startEmbedded runs the binary's own run function and returns the URLs its
// banner prints, and a channel with run's result.
func startEmbedded(t *testing.T, ctx context.Context, args []string) (e2e.Env, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	env := e2e.Env{KeyFile: filepath.Join(args[1], "auth-signing-key.pem")}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && (env.AuthURL == "" || env.FilmsURL == "" || env.MailURL == "") {
		m := bannerURL.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "auth":
			env.AuthURL = m[2]
		case m[1] == "films":
			env.FilmsURL = m[2]
		case m[1] == "mail":
			env.MailURL = m[3]
		}
	}
	go io.Copy(io.Discard, pr)
	if env.AuthURL == "" || env.FilmsURL == "" || env.MailURL == "" {
		t.Fatalf("the banner did not name every URL (run returned: %v)", <-done)
	}
	return env, done
}

func TestEmbeddedWalkthrough(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, done := startEmbedded(t, ctx, freeArgs(t, t.TempDir()))

	env.Walkthrough(t)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}

// The data folder keeps the signing key and the accounts across restarts, so
// a token issued before a restart still works after it.
func TestEmbeddedRestartKeepsState(t *testing.T) {
	args := freeArgs(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	env, done := startEmbedded(t, ctx, args)
	tk := env.SignUp(t, "restart@example.com", "correct horse battery")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	env, done = startEmbedded(t, ctx, args)
	if r := env.Do(t, http.MethodGet, env.AuthURL+"/v1/auth/me", nil, tk.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("me after restart: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, http.MethodPost, env.AuthURL+"/v1/auth/login", map[string]string{"email": "restart@example.com", "password": "correct horse battery"}, ""); r.Status != http.StatusOK {
		t.Fatalf("login after restart: %d %s", r.Status, r.Body)
	}
	cancel()
	<-done
}
