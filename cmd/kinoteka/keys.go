package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"kinoteka/internal/tokens"
)

const keysUsage = `usage:
  kinoteka keys generate [-alg RS256|ES256|EdDSA] [-dir DIR] [-activate-in DURATION]
  kinoteka keys list [-dir DIR]

DIR is auth's AUTH_SIGNING_KEYS_DIR (default: that variable, else data/keys).
A generated key is published in the JWK set as soon as auth loads it and
signs from its activation time on; give -activate-in at least the JWK set's
cache time (5m) on a running system, so every verifier knows the key before
the first token it signs. See docs/security.md, "Key rotation".`

// runKeys is `kinoteka keys`: make and inspect auth's signing keys.
func runKeys(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keysUsage)
		return errors.New("keys: name a subcommand: generate or list")
	}
	defaultDir := getenv("AUTH_SIGNING_KEYS_DIR")
	if defaultDir == "" {
		defaultDir = "data/keys"
	}
	defaultAlg := getenv("AUTH_SIGNING_ALG")
	if defaultAlg == "" {
		defaultAlg = tokens.RS256
	}
	fs := flag.NewFlagSet("kinoteka keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, keysUsage) }
	dir := fs.String("dir", defaultDir, "the keys folder")
	switch args[0] {
	case "generate":
		alg := fs.String("alg", defaultAlg, "RS256, ES256 or EdDSA")
		delay := fs.Duration("activate-in", 0, "publish now, sign from this long after now")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 || *delay < 0 {
			fs.Usage()
			return errors.New("keys generate: unexpected arguments")
		}
		if !slices.Contains(tokens.Algorithms, *alg) {
			return fmt.Errorf("keys generate: -alg must be one of %s, got %q", strings.Join(tokens.Algorithms, ", "), *alg)
		}
		k, err := tokens.GenerateKeyFile(*dir, *alg, time.Now().Add(*delay))
		if err != nil {
			return fmt.Errorf("keys generate: %w", err)
		}
		jwk, _ := tokens.NewJWK(k.Public)
		fmt.Fprintf(stdout, "wrote %s/%s\n  kid %s, alg %s, signs from %s\n", *dir, k.Name, jwk.Kid, jwk.Alg, k.ActiveFrom.Format(time.RFC3339))
		fmt.Fprintln(stdout, "Restart (or roll) auth to load it. Remove the old key once its last token has expired (AUTH_ACCESS_TTL after this key starts signing).")
		return nil
	case "list":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			fs.Usage()
			return errors.New("keys list: unexpected arguments")
		}
		keys, err := tokens.LoadKeyDir(*dir)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		return printKeys(stdout, keys, time.Now())
	default:
		fmt.Fprintln(stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q", args[0])
	}
}

// printKeys shows the ring as auth would use it at now.
func printKeys(w io.Writer, keys []tokens.Key, now time.Time) error {
	var signing string
	if s, err := tokens.NewRingSigner(keys, "", "", time.Minute, func() time.Time { return now }); err == nil {
		signing = s.KeyID()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tKID\tALG\tACTIVE FROM\tROLE")
	for _, k := range slices.Backward(keys) {
		jwk, err := tokens.NewJWK(k.Public)
		if err != nil {
			return err
		}
		role := "published"
		switch {
		case k.Private == nil:
			role = "published only (retired)"
		case jwk.Kid == signing:
			role = "signs now"
		case k.ActiveFrom.After(now):
			role = "published, signs from its time"
		}
		active := "at once"
		if !k.ActiveFrom.IsZero() {
			active = k.ActiveFrom.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Name, jwk.Kid, jwk.Alg, active, role)
	}
	if signing == "" {
		fmt.Fprintln(tw, "(no private key: auth cannot start with this folder)")
	}
	return tw.Flush()
}
