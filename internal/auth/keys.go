package auth

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"kinoteka/internal/tokens"
)

// newSigner loads the key ring the configuration names — one key file, or a
// folder of them — generating a first key when allowed, and logs what it
// publishes and which key signs.
func newSigner(cfg Config, log *slog.Logger, now func() time.Time) (*tokens.Signer, error) {
	keys, err := loadKeys(cfg, now())
	if err != nil {
		return nil, err
	}
	signer, err := tokens.NewRingSigner(keys, cfg.Issuer, cfg.Audience, cfg.AccessTTL, now)
	if err != nil {
		return nil, fmt.Errorf("auth: signing keys: %w", err)
	}
	for _, k := range keys {
		jwk, _ := tokens.NewJWK(k.Public)
		role := "signs now"
		switch {
		case k.Private == nil:
			role = "published only (retired)"
		case jwk.Kid != signer.KeyID():
			role = "published"
		}
		log.Info("signing key", "kid", jwk.Kid, "alg", jwk.Alg, "file", k.Name, "active_from", k.ActiveFrom, "role", role)
	}
	return signer, nil
}

func loadKeys(cfg Config, now time.Time) ([]tokens.Key, error) {
	if cfg.SigningKeysDir != "" {
		var (
			keys []tokens.Key
			err  error
		)
		if cfg.GenerateKey {
			keys, err = tokens.LoadOrGenerateKeyDir(cfg.SigningKeysDir, cfg.SigningAlg, now)
		} else {
			keys, err = tokens.LoadKeyDir(cfg.SigningKeysDir)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: signing keys in %s (AUTH_SIGNING_KEYS_DIR): %w", cfg.SigningKeysDir, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("auth: %s (AUTH_SIGNING_KEYS_DIR) holds no key; make one with `kinoteka keys generate -dir %s`", cfg.SigningKeysDir, cfg.SigningKeysDir)
		}
		return keys, nil
	}
	var (
		key crypto.Signer
		err error
	)
	if cfg.GenerateKey {
		key, err = tokens.LoadOrGenerateSigningKey(cfg.SigningKeyFile, cfg.SigningAlg)
	} else {
		key, err = tokens.LoadSigningKey(cfg.SigningKeyFile)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("auth: signing key %s does not exist (AUTH_SIGNING_KEY_FILE; set AUTH_GENERATE_KEY=true to generate one for development)", cfg.SigningKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", cfg.SigningKeyFile, err)
	}
	return []tokens.Key{{Private: key, Public: key.Public(), Name: cfg.SigningKeyFile}}, nil
}
