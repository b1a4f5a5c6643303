package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvAppliesSetValuesOnTopOfDefaults(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(" s3cret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"S": " hello ", "D": "0s", "I": "0", "B": "false", "L": "a, ,b", "P": "10.0.0.1, 192.168.0.0/16, ::ffff:192.0.2.1",
		"SECRET_FILE": secretFile, "BLANK": "   ", "LOW": "STARTTLS",
	}
	e := NewEnv(func(k string) string { return vars[k] })
	type cfg struct {
		S, Secret, Blank, Unset, Low string
		D                            time.Duration
		I                            int
		B                            bool
		L                            []string
		P                            []netip.Prefix
	}
	c := cfg{Blank: "default", Unset: "default", D: time.Minute, I: 7, B: true}
	e.String("S", &c.S)
	e.Secret("SECRET", &c.Secret)
	e.String("BLANK", &c.Blank)
	e.String("UNSET", &c.Unset)
	e.Lower("LOW", &c.Low)
	e.Duration("D", &c.D)
	e.Int("I", &c.I)
	e.Bool("B", &c.B)
	e.List("L", &c.L)
	e.Prefixes("P", &c.P)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	// Zero means zero: a set "0s" or "0" replaces the default.
	if c.S != "hello" || c.Secret != " s3cret " || c.Blank != "default" || c.Unset != "default" || c.Low != "starttls" ||
		c.D != 0 || c.I != 0 || c.B || !slices.Equal(c.L, []string{"a", "b"}) ||
		len(c.P) != 3 || c.P[0] != netip.MustParsePrefix("10.0.0.1/32") || c.P[1] != netip.MustParsePrefix("192.168.0.0/16") ||
		c.P[2] != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("got %+v", c)
	}
	if got := e.Read(); !slices.Contains(got, "SECRET") || !slices.Contains(got, "UNSET") || len(got) != 10 {
		t.Errorf("Read() = %v", got)
	}
}

func TestEnvReportsEveryBadVariableAtOnce(t *testing.T) {
	vars := map[string]string{"D": "soon", "I": "many", "B": "yes please", "P": "nowhere", "F_FILE": "/nonexistent/file"}
	e := NewEnv(func(k string) string { return vars[k] })
	var d time.Duration
	var i int
	var b bool
	var p []netip.Prefix
	var f string
	e.Duration("D", &d)
	e.Int("I", &i)
	e.Bool("B", &b)
	e.Prefixes("P", &p)
	e.Secret("F", &f)
	e.Func("I", func(string) error { return nil })
	err := e.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"D:", "I:", "B:", "P:", "F_FILE:"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
