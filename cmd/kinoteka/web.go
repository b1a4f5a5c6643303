package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"kinoteka/internal/launch"
	"kinoteka/internal/web"
)

// The embedded mode's web service: the site people open, talking to auth
// and films over their HTTP ports like any other client, with a session key
// kept in the data folder (so a restart keeps everybody signed in) and a
// link to the mail catcher's inbox on the code pages.

func (s *system) webURL() string { return "http://" + s.webLn.Addr().String() }

// runWeb serves the site until ctx ends.
func (s *system) runWeb(ctx context.Context) error {
	key, err := webSessionKey(s.cfg.DataDir)
	if err != nil {
		return named("web", err)
	}
	cfg := web.DefaultConfig()
	cfg.AuthURL = s.authURL()
	cfg.FilmsURL = s.filmsURL()
	cfg.SessionKey = key
	cfg.InboxURL = s.mailUIURL()
	cfg.Tracing = s.tracing["web"]
	return named("web", web.Run(ctx, cfg, s.log.With("service", "web"), launch.Listeners{Public: s.webLn, Ops: s.webOpsLn}))
}

// webSessionKey loads the key that seals session cookies from the data
// folder, creating it on first start.
func webSessionKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "web-session-key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= web.MinSessionKey {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	b = []byte(hex.EncodeToString(raw[:]))
	return b, os.WriteFile(path, b, 0o600)
}
