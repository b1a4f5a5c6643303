// Package config is the one way Kinoteka's binaries read their environment.
//
// Each service keeps one Config struct and one DefaultConfig() — the only
// place its defaults live — and a loader that applies the environment on top
// through an Env:
//
//	cfg := DefaultConfig()
//	env := config.NewEnv(getenv)
//	env.String("AUTH_DATABASE_URL", &cfg.DatabaseURL)
//	env.Duration("AUTH_ACCESS_TTL", &cfg.AccessTTL)
//	if err := env.Err(); err != nil { … }   // every malformed variable at once
//	return cfg, cfg.Validate()
//
// A variable that is unset (or blank) leaves the default alone; a variable
// that is set is taken as written, so zero means zero: a setting that can be
// switched off says so with an explicit word ("off") or a documented value,
// never by a zero that a layer below turns back into a default.
//
// Every variable may instead be given as NAME_FILE, the path of a file that
// holds the value (the Docker secrets convention), so secrets never have to
// sit in the environment.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Env reads typed values from the environment and collects every error,
// each naming its variable.
type Env struct {
	getenv func(string) string
	errs   []error
	read   []string
}

// NewEnv reads from getenv (os.Getenv in a binary, a map in a test).
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Err is every malformed variable, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Read lists every variable name the loader asked for, in order: the
// documentation test holds docs/operations.md against it.
func (e *Env) Read() []string { return slices.Clone(e.read) }

// Failf records a problem with name's value, for checks a loader makes
// beyond the typed getters.
func (e *Env) Failf(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Lookup returns name's raw value (from NAME, else from the file NAME_FILE
// names, without its trailing newline) and whether it is set. Surrounding
// white space is kept: it may be part of a secret.
func (e *Env) Lookup(name string) (string, bool) {
	e.read = append(e.read, name)
	if v := e.getenv(name); strings.TrimSpace(v) != "" {
		return v, true
	}
	path := strings.TrimSpace(e.getenv(name + "_FILE"))
	if path == "" {
		return "", false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.Failf(name+"_FILE", "%v", err)
		return "", false
	}
	return strings.TrimRight(string(b), "\r\n"), true
}

// lookup is Lookup trimmed, for every non-secret value.
func (e *Env) lookup(name string) (string, bool) {
	v, ok := e.Lookup(name)
	return strings.TrimSpace(v), ok
}

// String sets *dst to name's value when it is set.
func (e *Env) String(name string, dst *string) {
	if v, ok := e.lookup(name); ok {
		*dst = v
	}
}

// Secret sets *dst to name's value verbatim (spaces included) when set.
func (e *Env) Secret(name string, dst *string) {
	if v, ok := e.Lookup(name); ok {
		*dst = v
	}
}

// Bytes is Secret for a []byte field.
func (e *Env) Bytes(name string, dst *[]byte) {
	if v, ok := e.Lookup(name); ok {
		*dst = []byte(v)
	}
}

// Lower is String lower-cased, for words such as "starttls".
func (e *Env) Lower(name string, dst *string) {
	if v, ok := e.lookup(name); ok {
		*dst = strings.ToLower(v)
	}
}

// Duration sets *dst from a Go duration such as "15m" or "1s".
func (e *Env) Duration(name string, dst *time.Duration) {
	v, ok := e.lookup(name)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Failf(name, "%q is not a duration such as 15m or 1s", v)
		return
	}
	*dst = d
}

// Int sets *dst from a whole number.
func (e *Env) Int(name string, dst *int) {
	v, ok := e.lookup(name)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Failf(name, "%q is not a whole number", v)
		return
	}
	*dst = n
}

// Bool sets *dst from true/false (or 1/0, t/f).
func (e *Env) Bool(name string, dst *bool) {
	v, ok := e.lookup(name)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Failf(name, "%q is not true or false", v)
		return
	}
	*dst = b
}

// List sets *dst from a comma-separated list, dropping blank items.
func (e *Env) List(name string, dst *[]string) {
	v, ok := e.lookup(name)
	if !ok {
		return
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*dst = out
}

// Prefixes sets *dst from comma-separated addresses or CIDR prefixes; a
// bare address is its own /32 (/128), an IPv4-mapped IPv6 one (::ffff:a.b.c.d)
// its IPv4 /32, as peers' addresses are compared unmapped.
func (e *Env) Prefixes(name string, dst *[]netip.Prefix) {
	var items []string
	e.List(name, &items)
	if items == nil {
		return
	}
	out := make([]netip.Prefix, 0, len(items))
	for _, s := range items {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			e.Failf(name, "%q is neither an address nor a CIDR prefix", s)
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*dst = out
}

// Func hands name's value, when set, to parse; its error is recorded
// against name.
func (e *Env) Func(name string, parse func(string) error) {
	v, ok := e.lookup(name)
	if !ok {
		return
	}
	if err := parse(v); err != nil {
		e.Failf(name, "%v", err)
	}
}
