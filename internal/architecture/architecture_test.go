package architecture

import (
	"slices"
	"strings"
	"testing"
)

const module = "kinoteka"

// Each service with its binary.
var (
	auth   = []string{"kinoteka/internal/auth/...", "kinoteka/cmd/auth"}
	films  = []string{"kinoteka/internal/films/...", "kinoteka/cmd/films"}
	mailer = []string{"kinoteka/internal/mailer/...", "kinoteka/cmd/mailer"}
	web    = []string{"kinoteka/internal/web/...", "kinoteka/cmd/web"}

	services = slices.Concat(auth, films, mailer, web)

	// The packages only tests import.
	testKits = []string{
		"kinoteka/internal/testkit/...",
		"kinoteka/internal/e2e/...",
		"kinoteka/internal/sqldb/sqldbtest/...",
		"kinoteka/internal/apidocs/apidocstest/...",
		"kinoteka/internal/a11y/...", // checks the pages' markup in the tests of what renders them
	}
)

// planned are packages the rules may name before they exist (none today).
var planned []string

const apart = "services meet only over HTTP and Kafka, and each binary deploys alone"

// rules is the architecture of docs/architecture.md as import rules.
var rules = []rule{
	{from: auth, forbid: slices.Concat(films, mailer, web), tests: true, why: apart},
	{from: films, forbid: slices.Concat(auth, mailer, web), tests: true, why: apart},
	{from: mailer, forbid: slices.Concat(auth, films, web), tests: true, why: apart},
	// web's tests, unlike the other services', may start the real services.
	{from: web, forbid: slices.Concat(auth, films, mailer, []string{"kinoteka/internal/sqldb/..."}),
		why: "web uses auth and films through their public HTTP APIs, like any client, and keeps no database"},
	{from: []string{"kinoteka/internal/..."}, except: services, forbid: services, tests: true,
		why: "shared packages (tokens, httpapi, launch, sqldb, outbox, config, …) serve every service, so they know none"},
	{from: []string{"kinoteka/internal/..."}, forbid: []string{"kinoteka/cmd/..."}, tests: true,
		why: "binaries are made of internal packages, never the other way round"},
	{from: []string{"kinoteka/internal/events/..."}, tests: true,
		forbid: []string{"github.com/twmb/franz-go/...", "kinoteka/internal/kafka/...", "net/http", "net/smtp", "github.com/emersion/..."},
		why:    "events is the contract on the wire — types, topic names, encoding — whatever carries it"},
	{from: []string{"kinoteka/..."}, except: testKits, forbid: append(slices.Clone(testKits), "testing"),
		why: "test kits are for tests: no binary carries them"},
	{from: []string{"kinoteka/internal/testkit/..."}, forbid: []string{"kinoteka/..."},
		why: "every package's tests use testkit; importing one of ours would be an import cycle in that package's tests"},
}

func TestImportGraphKeepsTheArchitecture(t *testing.T) {
	g := loadGraph(t)
	for _, p := range unknown(g, rules, module, planned) {
		t.Errorf("a rule names %s, which is no package of the module (renamed? add new ones to planned)", p)
	}
	for _, v := range check(g, rules) {
		t.Error(v)
	}
}

// The checker itself, on a graph made up to break each kind of rule.
func TestCheckNamesTheChain(t *testing.T) {
	g := graph{
		"kinoteka/internal/films": {imports: []string{"kinoteka/internal/tokens", "fmt"}, files: map[string][]string{
			"kinoteka/internal/tokens": {"internal/films/auth.go"},
		}},
		"kinoteka/internal/films (tests)": {imports: []string{"kinoteka/internal/tokens", "kinoteka/internal/mailer"}, files: map[string][]string{
			"kinoteka/internal/mailer": {"internal/films/x_test.go"},
		}},
		"kinoteka/internal/tokens": {imports: []string{"kinoteka/internal/auth/keys", "net/http"}, files: map[string][]string{
			"kinoteka/internal/auth/keys": {"internal/tokens/a.go", "internal/tokens/b.go"},
		}},
		"kinoteka/internal/auth/keys":      {imports: []string{"kinoteka/internal/auth"}},
		"kinoteka/internal/auth":           {imports: []string{"kinoteka/internal/tokens", "kinoteka/internal/films"}},
		"kinoteka/internal/events":         {imports: []string{"example.com/wire"}},
		"example.com/wire":                 {imports: []string{"github.com/twmb/franz-go/pkg/kgo"}},
		"github.com/twmb/franz-go/pkg/kgo": {},
		"kinoteka/internal/mailer":         {},
		"fmt":                              {},
		"net/http":                         {},
	}
	got := strings.Join(check(g, rules), "\n")
	for _, want := range []string{
		// Through a shared package, with the files of each hop; the first
		// forbidden package on the path is the one named.
		"kinoteka/internal/films imports kinoteka/internal/auth/keys (" + apart + "):\n" +
			"\tinternal/films/auth.go imports kinoteka/internal/tokens\n" +
			"\tinternal/tokens/a.go, internal/tokens/b.go imports kinoteka/internal/auth/keys",
		// Only in the tests, and said so.
		"kinoteka/internal/films (tests) imports kinoteka/internal/mailer (" + apart + "):\n" +
			"\tinternal/films/x_test.go imports kinoteka/internal/mailer",
		// The shared package is named for its own import.
		"kinoteka/internal/tokens imports kinoteka/internal/auth/keys (shared packages",
		// A subpackage of a service counts as the service; a direct import has no files known.
		"kinoteka/internal/auth/keys imports kinoteka/internal/films (" + apart + "):\n" +
			"\tkinoteka/internal/auth/keys imports kinoteka/internal/auth\n" +
			"\tkinoteka/internal/auth imports kinoteka/internal/films",
		// A transport reached through someone else's package.
		"kinoteka/internal/events imports github.com/twmb/franz-go/pkg/kgo (events is the contract",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing violation:\n%s\n--- got:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "kinoteka/internal/films (tests) imports kinoteka/internal/auth"); n != 0 {
		t.Errorf("the tests repeat what the package itself already breaks (%d times):\n%s", n, got)
	}
	if strings.Contains(got, "net/http") {
		t.Errorf("tokens may import net/http, only events may not:\n%s", got)
	}

	clean := graph{
		"kinoteka/internal/films":  {imports: []string{"kinoteka/internal/tokens"}},
		"kinoteka/internal/tokens": {imports: []string{"net/http"}},
		"kinoteka/cmd/kinoteka":    {imports: []string{"kinoteka/internal/films", "kinoteka/internal/auth"}},
		"kinoteka/internal/auth":   {imports: []string{"kinoteka/internal/tokens"}},
	}
	if v := check(clean, rules); len(v) != 0 {
		t.Errorf("a graph that keeps the rules: %q", v)
	}
}

func TestUnknownNamesARenamedPackage(t *testing.T) {
	g := graph{"kinoteka/internal/films": {}, "kinoteka/internal/tokens": {}}
	rs := []rule{{from: []string{"kinoteka/internal/films/..."}, forbid: []string{"kinoteka/internal/token/...", "kinoteka/internal/web", "net/http"}}}
	got := unknown(g, rs, module, []string{"kinoteka/internal/web"})
	if !slices.Equal(got, []string{"kinoteka/internal/token/..."}) {
		t.Errorf("unknown = %q, want only the misspelt package (web is planned, net/http is not ours)", got)
	}
}
