package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"kinoteka/internal/launch"
	"kinoteka/internal/telemetry"
)

// operationsDoc is where an operator looks up a variable.
const operationsDoc = "../docs/operations.md"

// TestOperationsDocumentsWhatServicesRead holds the variable tables of
// docs/operations.md against what each binary really asks for, both ways:
// every variable read is in a table that applies to the service, and every
// variable a table lists for it is read. The names are recorded from the
// getenv a binary hands launch.Run, so they include launch's own (the
// listen address, LOG_LEVEL), the tracing (OTEL_*) and Kafka's.
func TestOperationsDocumentsWhatServicesRead(t *testing.T) {
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := variableTables(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tables {
		for _, svc := range s.services {
			if _, ok := kinotekaServices[svc]; !ok && svc != everyService {
				t.Errorf("operations.md: section %q applies to %q, which is not a service", s.heading, svc)
			}
		}
	}
	for name, svc := range kinotekaServices {
		t.Run(name, func(t *testing.T) {
			read := readVariables(t, name, svc.addrEnv, svc.opsAddrEnv, svc.load)
			documented := map[string]string{} // variable → its section
			for _, s := range tables {
				if !slices.Contains(s.services, name) && !slices.Contains(s.services, everyService) {
					continue
				}
				for _, v := range s.variables {
					documented[v] = s.heading
				}
			}
			for _, v := range read {
				if _, ok := documented[v]; !ok {
					t.Errorf("%s reads %s, but no table of operations.md lists it for %s", name, v, name)
				}
			}
			for _, v := range slices.Sorted(maps.Keys(documented)) {
				if !slices.Contains(read, v) {
					t.Errorf("operations.md lists %s under %q, but %s never reads it", v, documented[v], name)
				}
			}
		})
	}
}

// readVariables runs the binary's start-up — launch.Run with the service's
// loader and tracing — on an empty environment and returns the variables
// it asked for, in order. The service itself is not run.
func readVariables(t *testing.T, name, addrEnv, opsAddrEnv string, load func(func(string) string) error) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		asked []string
	)
	getenv := func(k string) string {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(asked, k) {
			asked = append(asked, k)
		}
		if k == addrEnv || k == opsAddrEnv {
			return "127.0.0.1:0"
		}
		return ""
	}
	err := launch.Run(context.Background(), launch.Service[struct{}]{
		Name: name, AddrEnv: addrEnv, OpsAddrEnv: opsAddrEnv,
		// An empty environment is not a valid configuration (auth needs a
		// code secret), but every variable has been asked for by then.
		Load:    func(g func(string) string) (struct{}, error) { _ = load(g); return struct{}{}, nil },
		Run:     func(_ context.Context, _ struct{}, _ *slog.Logger, ln launch.Listeners) error { ln.Close(); return nil },
		Tracing: func(*struct{}, *telemetry.Tracing) {},
	}, nil, getenv, io.Discard)
	if err != nil {
		t.Fatalf("start-up on an empty environment: %v", err)
	}
	// NAME_FILE, asked after NAME, is the secrets convention that applies
	// to every variable (documented once), not a variable of its own.
	return slices.DeleteFunc(asked, func(k string) bool {
		base, ok := strings.CutSuffix(k, "_FILE")
		return ok && slices.Contains(asked, base)
	})
}

// everyService marks a section that applies to every service.
const everyService = "*"

// section is one table of "## Environment variables".
type section struct {
	heading   string
	services  []string // the services it applies to, or everyService
	variables []string
}

var (
	backticked  = regexp.MustCompile("`([^`]+)`")
	variable    = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(<[A-Z]+>[A-Z0-9_]*)?$`)
	wordList    = regexp.MustCompile(`^[A-Z]+( [A-Z]+)+$`)
	forWhom     = regexp.MustCompile(`\(([a-z, ]+)\)$`)
	placeholder = regexp.MustCompile(`<[A-Z]+>`)
)

func errorf(format string, a ...any) error { return fmt.Errorf("operations.md: "+format, a...) }

// variableTables reads the tables of the "## Environment variables" part.
// A section "### Every service" applies to all, "### auth" to auth, and
// "### Kafka (auth, mailer)" to those named. A variable with a placeholder,
// AUTH_THROTTLE_<ACTION>, stands for each word of the row's list of
// upper-case words (`REGISTER VERIFY …`).
func variableTables(doc string) ([]section, error) {
	_, rest, ok := strings.Cut(doc, "\n## Environment variables\n")
	if !ok {
		return nil, errorf("no \"## Environment variables\" section")
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var out []section
	for _, line := range strings.Split(rest, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			s := section{heading: h}
			switch m := forWhom.FindStringSubmatch(h); {
			case h == "Every service":
				s.services = []string{everyService}
			case m != nil:
				for w := range strings.SplitSeq(m[1], ",") {
					s.services = append(s.services, strings.TrimSpace(w))
				}
			default:
				s.services = []string{h}
			}
			out = append(out, s)
			continue
		}
		cells := strings.Split(line, "|")
		if len(out) == 0 || len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue
		}
		s := &out[len(out)-1]
		var words []string
		for _, m := range backticked.FindAllStringSubmatch(strings.Join(cells[2:], "|"), -1) {
			if wordList.MatchString(m[1]) {
				words = strings.Fields(m[1])
				break
			}
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			if !variable.MatchString(name) {
				return nil, errorf("section %q: %q is not a variable name", s.heading, name)
			}
			if !placeholder.MatchString(name) {
				s.variables = append(s.variables, name)
				continue
			}
			if words == nil {
				return nil, errorf("section %q: %s has no `A B C` list of what it stands for", s.heading, name)
			}
			for _, w := range words {
				s.variables = append(s.variables, placeholder.ReplaceAllString(name, w))
			}
		}
	}
	return out, nil
}

func TestVariableTables(t *testing.T) {
	doc := `# x

## Environment variables

### Every service

| variable | default | meaning |
|---|---|---|
| ` + "`LOG_LEVEL`" + ` | ` + "`info`" + ` | level |

### Kafka (auth, mailer)

| variable | default | meaning |
|---|---|---|
| ` + "`KAFKA_SASL_USER`, `KAFKA_SASL_PASSWORD`" + ` | | credentials, ` + "`plain`" + ` |

### auth

| variable | default | meaning |
|---|---|---|
| ` + "`AUTH_THROTTLE_<ACTION>`" + ` | | e.g. ` + "`AUTH_THROTTLE_LOGIN=ip=1/1m`" + `; actions ` + "`LOGIN RESET`" + ` |

## Running it

| ` + "`NOT_A_VARIABLE_TABLE`" + ` | | |
`
	got, err := variableTables(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []section{
		{heading: "Every service", services: []string{everyService}, variables: []string{"LOG_LEVEL"}},
		{heading: "Kafka (auth, mailer)", services: []string{"auth", "mailer"}, variables: []string{"KAFKA_SASL_USER", "KAFKA_SASL_PASSWORD"}},
		{heading: "auth", services: []string{"auth"}, variables: []string{"AUTH_THROTTLE_LOGIN", "AUTH_THROTTLE_RESET"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	for _, bad := range []string{
		"## Environment variables\n### auth\n| `AUTH_THROTTLE_<ACTION>` | | no list |\n",
		"## Environment variables\n### auth\n| `auth_addr` | | lower case |\n",
		"## Operating\n",
	} {
		if _, err := variableTables("\n" + bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}
