package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"kinoteka/internal/auth"
	"kinoteka/internal/sqldb"
)

const adminUsage = `usage:
  kinoteka admin grant-role  [-db URL] EMAIL ROLE
  kinoteka admin revoke-role [-db URL] EMAIL ROLE

Stores or removes a role (admin) on an account in auth's database: URL is
AUTH_DATABASE_URL (default: that variable, else sqlite:data/auth.db). The
role reaches the account's access tokens at its next login or refresh.
Addresses in AUTH_ADMIN_EMAILS are admins by configuration; this command does
not change that list.`

// runAdmin is `kinoteka admin`: account administration on auth's database.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "grant-role" && args[0] != "revoke-role") {
		fmt.Fprintln(stderr, adminUsage)
		return errors.New("admin: name a subcommand: grant-role or revoke-role")
	}
	defaultDB := getenv("AUTH_DATABASE_URL")
	if defaultDB == "" {
		defaultDB = "sqlite:data/auth.db"
	}
	fs := flag.NewFlagSet("kinoteka admin "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, adminUsage) }
	dbURL := fs.String("db", defaultDB, "auth's database URL")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("admin %s: want EMAIL ROLE", args[0])
	}
	email, role := fs.Arg(0), fs.Arg(1)
	db, err := sqldb.Open(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("admin: database: %w", err)
	}
	defer db.Close()
	if err := auth.Migrate(ctx, db); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	change, state := auth.GrantRole, "holds"
	if args[0] == "revoke-role" {
		change, state = auth.RevokeRole, "does not hold"
	}
	changed, err := change(ctx, db, email, role, "kinoteka admin", time.Now())
	if err != nil {
		return fmt.Errorf("admin %s: %w", args[0], err)
	}
	if !changed {
		fmt.Fprintf(stdout, "%s already %s the stored role %s; nothing changed\n", email, state, role)
		return nil
	}
	fmt.Fprintf(stdout, "%s now %s the role %s, from its next login or refresh on\n", email, state, role)
	return nil
}
