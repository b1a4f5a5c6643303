// Package deploy holds the container build and the docker-compose topology.
// No Docker engine runs where the tests run, so this test loads the compose
// file with compose-go — the loader Docker Compose itself uses — and checks
// the topology against the services' own configuration code.
package deploy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"kinoteka/internal/auth"
	"kinoteka/internal/events"
	"kinoteka/internal/films"
	"kinoteka/internal/mailer"
	"kinoteka/internal/web"
)

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv(nil), // the defaults written in the file, not this machine's environment
		cli.WithName("kinoteka"),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go refuses the file: %v", err)
	}
	return p
}

// kinotekaServices maps each service of ours to the configuration loader its
// binary runs and the variables its listen addresses come from: the public
// listener's (none for the mailer) and the operators' (cmd/*/main.go).
var kinotekaServices = map[string]struct {
	addrEnv, opsAddrEnv string
	load                func(getenv func(string) string) error
}{
	"auth":   {"AUTH_ADDR", "AUTH_OPS_ADDR", func(g func(string) string) error { _, err := auth.LoadConfig(g); return err }},
	"films":  {"FILMS_ADDR", "FILMS_OPS_ADDR", func(g func(string) string) error { _, err := films.LoadConfig(g); return err }},
	"mailer": {"", "MAILER_ADDR", func(g func(string) string) error { _, err := mailer.LoadConfig(g); return err }},
	"web":    {"WEB_ADDR", "WEB_OPS_ADDR", func(g func(string) string) error { _, err := web.LoadConfig(g); return err }},
}

func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func TestComposeDependenciesAreHealthGated(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		if s.Restart == "" {
			t.Errorf("%s: no restart policy", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || len(target.HealthCheck.Test) == 0 || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, but %s restarts (%q)", name, dep, dep, target.Restart)
				}
			default:
				t.Errorf("%s depends on %s with condition %q; want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
	}
	for name := range kinotekaServices {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "healthcheck") {
			t.Errorf("%s: healthcheck should run the binary's own probe, got %v", name, s.HealthCheck)
		}
	}
}

// Every variable a service reads is set where its default would be wrong in
// a container, every variable set is one the service reads (a typo would be
// silently ignored otherwise), and the configuration loads.
func TestComposeEnvironmentMatchesWhatServicesRead(t *testing.T) {
	p := loadProject(t)
	for name, svc := range kinotekaServices {
		t.Run(name, func(t *testing.T) {
			vars := env(p.Services[name])
			read := map[string]bool{"LOG_LEVEL": true, svc.addrEnv: true, svc.opsAddrEnv: true}
			getenv := func(k string) string {
				read[k] = true
				if v, ok := vars[k]; ok {
					return v
				}
				if _, ok := vars[k+"_FILE"]; ok {
					return "a-secret-mounted-from-a-file-0123456789abcdef"
				}
				return ""
			}
			if err := svc.load(getenv); err != nil {
				t.Fatalf("the service refuses the compose environment: %v", err)
			}
			for k, v := range vars {
				if base, isFile := strings.CutSuffix(k, "_FILE"); !read[k] && !(isFile && read[base]) {
					t.Errorf("%s=%q is set but %s never reads it", k, v, name)
				}
				if strings.Contains(v, "127.0.0.1") || strings.HasPrefix(v, "sqlite:") {
					t.Errorf("%s=%q points at the container itself", k, v)
				}
			}
			for _, k := range []string{svc.addrEnv, svc.opsAddrEnv} {
				if k == "" {
					continue
				}
				host, _, err := net.SplitHostPort(vars[k])
				if err != nil || host != "0.0.0.0" {
					t.Errorf("%s=%q: must listen on 0.0.0.0 to be reachable from other containers", k, vars[k])
				}
			}
		})
	}
	authEnv, filmsEnv := env(p.Services["auth"]), env(p.Services["films"])
	if authEnv["AUTH_ISSUER"] != filmsEnv["FILMS_ISSUER"] || authEnv["AUTH_AUDIENCE"] != filmsEnv["FILMS_AUDIENCE"] {
		t.Errorf("films expects iss %q aud %q, auth issues iss %q aud %q",
			filmsEnv["FILMS_ISSUER"], filmsEnv["FILMS_AUDIENCE"], authEnv["AUTH_ISSUER"], authEnv["AUTH_AUDIENCE"])
	}
	if u, err := url.Parse(filmsEnv["FILMS_JWKS_URL"]); err != nil || u.Hostname() != "auth" {
		t.Errorf("FILMS_JWKS_URL=%q should name the auth service", filmsEnv["FILMS_JWKS_URL"])
	}
}

// Each service's database exists, owned by that service's own role.
func TestComposeDatabasePerService(t *testing.T) {
	p := loadProject(t)
	initSQL, err := os.ReadFile("postgres-init.sql")
	if err != nil {
		t.Fatal(err)
	}
	setup := strings.Join(p.Services["postgres-setup"].Entrypoint, " ")
	seen := map[string]string{}
	for name, s := range p.Services {
		for k, v := range env(s) {
			if !strings.HasSuffix(k, "_DATABASE_URL") {
				continue
			}
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "postgres" {
				t.Errorf("%s %s=%q: want a postgres:// URL", name, k, v)
				continue
			}
			db, user := strings.TrimPrefix(u.Path, "/"), u.User.Username()
			if other, ok := seen[db]; ok {
				t.Errorf("%s and %s share database %s", name, other, db)
			}
			seen[db] = name
			if !strings.Contains(string(initSQL), fmt.Sprintf("'CREATE DATABASE %s OWNER %s'", db, user)) {
				t.Errorf("postgres-init.sql does not create database %s owned by %s", db, user)
			}
			// One source for the password: the secrets volume. The URL
			// carries none; the role's comes from the same file as the
			// service's pgpass (kinoteka dev-secrets derives one from the
			// other).
			if _, has := u.User.Password(); has {
				t.Errorf("%s %s: the URL holds a password; it belongs in the secrets volume", name, k)
			}
			if pf := u.Query().Get("passfile"); pf != "/secrets/"+db+".pgpass" || !mountsSecrets(s) {
				t.Errorf("%s %s: passfile=%q, want /secrets/%s.pgpass from the secrets volume", name, k, pf, db)
			}
			if !strings.Contains(string(initSQL), fmt.Sprintf("ALTER ROLE %s PASSWORD :'%s_password';", user, user)) ||
				!strings.Contains(setup, fmt.Sprintf(`-v %s_password="$(cat /secrets/%s-db-password)"`, user, db)) {
				t.Errorf("postgres-setup does not set role %s's password from /secrets/%s-db-password", user, db)
			}
		}
	}
	for _, name := range []string{"auth", "films"} {
		if !slices.Contains(mapValues(seen), name) {
			t.Errorf("%s has no database URL", name)
		}
	}
}

// mountsSecrets reports whether s mounts the secrets volume at /secrets.
func mountsSecrets(s types.ServiceConfig) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "secrets" && v.Target == "/secrets" {
			return true
		}
	}
	return false
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Images are pinned, build targets exist in the Dockerfile, mounted files
// exist, and the services meant to scale publish no fixed host port.
func TestComposeImagesBuildsAndScaling(t *testing.T) {
	p := loadProject(t)
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(dockerfile), -1) {
		targets[m[1]] = true
	}
	for name, s := range p.Services {
		if s.Image == "" || !strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
		}
		if s.Build != nil {
			if !targets[s.Build.Target] {
				t.Errorf("%s: build target %q is not in the Dockerfile (have %v)", name, s.Build.Target, targets)
			}
			if filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
				t.Errorf("%s: builds from %q", name, s.Build.Dockerfile)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			}
		}
	}
	for _, name := range []string{"films", "mailer", "web"} {
		if ports := p.Services[name].Ports; len(ports) > 0 {
			t.Errorf("%s is scaled with --scale but publishes host ports %v", name, ports)
		}
	}
	for _, name := range []string{"kafka", "postgres", "mailpit", "auth", "films", "mailer", "web", "proxy", "kafka-topics", "secrets"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
}

// web reaches auth and films by their service names, and the proxy sends
// people to web and programs' /v1/… and /.well-known/… to the APIs.
func TestComposeRoutesTheSiteAndTheAPIs(t *testing.T) {
	p := loadProject(t)
	webEnv := env(p.Services["web"])
	for k, host := range map[string]string{"WEB_AUTH_URL": "auth", "WEB_FILMS_URL": "films"} {
		if u, err := url.Parse(webEnv[k]); err != nil || u.Hostname() != host {
			t.Errorf("%s=%q should name the %s service", k, webEnv[k], host)
		}
	}
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{}
	for _, m := range regexp.MustCompile(`location\s+(=\s*)?(\S+)\s*\{[^}]*?set \$\w+ http://(\w+):\d+;`).FindAllStringSubmatch(string(conf), -1) {
		routes[m[2]] = m[3]
	}
	for loc, svc := range map[string]string{"/": "web", "/v1/": "films", "/v1/auth/": "auth", "/.well-known/": "auth"} {
		if routes[loc] != svc {
			t.Errorf("the proxy sends %s to %q, want %s (routes %v)", loc, routes[loc], svc, routes)
		}
	}
}

// Each service's operators' port — /metrics, the probes, the API docs — is
// reachable on the compose network only: it is a port of its own, no
// host port publishes it, and the proxy never routes to it (nor to the
// mailer, whose one port is the operators'). The healthchecks run the
// binary's own probe, which reads the same variable and so asks that port.
func TestComposeKeepsOperatorPortsOffThePublicPaths(t *testing.T) {
	p := loadProject(t)
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	upstreams := regexp.MustCompile(`http://([\w.-]+):(\d+)`).FindAllStringSubmatch(string(conf), -1)
	if len(upstreams) == 0 {
		t.Fatal("nginx.conf names no upstream")
	}
	for name, svc := range kinotekaServices {
		vars := env(p.Services[name])
		_, opsPort, err := net.SplitHostPort(vars[svc.opsAddrEnv])
		if err != nil {
			t.Errorf("%s: %s=%q: %v", name, svc.opsAddrEnv, vars[svc.opsAddrEnv], err)
			continue
		}
		if svc.addrEnv != "" {
			if _, port, _ := net.SplitHostPort(vars[svc.addrEnv]); port == opsPort {
				t.Errorf("%s: %s and %s share port %s", name, svc.addrEnv, svc.opsAddrEnv, port)
			}
		}
		for _, port := range p.Services[name].Ports {
			if strconv.Itoa(int(port.Target)) == opsPort {
				t.Errorf("%s publishes its operators' port %s on the host (%s)", name, opsPort, port.Published)
			}
		}
		for _, u := range upstreams {
			if u[1] == name && (u[2] == opsPort || svc.addrEnv == "") {
				t.Errorf("the proxy routes to %s, %s's operators' port", u[0], name)
			}
		}
	}
}

// auth believes X-Forwarded-For from exactly the containers that forward
// clients to it — the proxy and web, by service name — and from no address
// range: a range would trust every other container (and the bridge's
// gateway) in it to choose its own throttle bucket. No fixed subnet either:
// it collides ("Pool overlaps") with networks a host already has.
func TestComposeTrustsOnlyTheForwardingProxies(t *testing.T) {
	p := loadProject(t)
	var trusted []string
	for item := range strings.SplitSeq(env(p.Services["auth"])["AUTH_TRUSTED_PROXIES"], ",") {
		item = strings.TrimSpace(item)
		if pre, err := netip.ParsePrefix(item); err == nil {
			t.Errorf("AUTH_TRUSTED_PROXIES holds the range %s: name the proxies instead", pre)
			continue
		}
		if _, ok := p.Services[item]; !ok {
			t.Errorf("AUTH_TRUSTED_PROXIES names %q, which is not a service", item)
		}
		trusted = append(trusted, item)
	}
	slices.Sort(trusted)
	if !slices.Equal(trusted, []string{"proxy", "web"}) {
		t.Errorf("auth trusts %v, want exactly [proxy web] (the two hops that forward clients)", trusted)
	}
	for name, n := range p.Networks {
		if len(n.Ipam.Config) > 0 {
			t.Errorf("network %s fixes its addresses (%v): let Docker choose", name, n.Ipam.Config)
		}
	}
}

// composeGetenv is the service's environment as its binary sees it, a
// variable given as NAME_FILE read as a placeholder secret.
func composeGetenv(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if _, ok := vars[k+"_FILE"]; ok {
			return "a-secret-mounted-from-a-file-0123456789abcdef"
		}
		return ""
	}
}

// The broker takes no one without a password: every Kafka client of ours
// logs in with SCRAM-SHA-512 as its own user, the password from its own
// file in the secrets volume; the broker's listeners are all SASL, the
// controller's on the container's loopback only, an authorizer refuses what
// no ACL allows, and no host port leads to it.
func TestComposeKafkaRequiresSASL(t *testing.T) {
	p := loadProject(t)
	clients := 0
	for name, s := range p.Services {
		vars := env(s)
		if _, ok := vars["KAFKA_BROKERS"]; !ok {
			continue
		}
		clients++
		if vars["KAFKA_SASL_MECHANISM"] != "scram-sha-512" || vars["KAFKA_SASL_USER"] != name ||
			vars["KAFKA_SASL_PASSWORD_FILE"] != "/secrets/kafka-"+name+"-password" || !mountsSecrets(s) {
			t.Errorf("%s: KAFKA_SASL_MECHANISM=%q KAFKA_SASL_USER=%q KAFKA_SASL_PASSWORD_FILE=%q; want scram-sha-512 as %s with /secrets/kafka-%s-password",
				name, vars["KAFKA_SASL_MECHANISM"], vars["KAFKA_SASL_USER"], vars["KAFKA_SASL_PASSWORD_FILE"], name, name)
		}
		if _, ok := vars["KAFKA_SASL_PASSWORD"]; ok {
			t.Errorf("%s: KAFKA_SASL_PASSWORD is written in the compose file; read it from the secrets volume", name)
		}
	}
	if clients != 3 {
		t.Errorf("%d services talk to Kafka, want auth, films and mailer", clients)
	}
	kafka := p.Services["kafka"]
	if len(kafka.Ports) > 0 {
		t.Errorf("kafka publishes %v on the host", kafka.Ports)
	}
	start, err := os.ReadFile("kafka-start.sh")
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][\w.-]*)=(.*)$`).FindAllStringSubmatch(string(start), -1) {
		props[m[1]] = m[2]
	}
	for k, want := range map[string]string{
		"listeners":                                    "CONTROLLER://localhost:29093,BROKER://:19092",
		"listener.security.protocol.map":               "CONTROLLER:SASL_PLAINTEXT,BROKER:SASL_PLAINTEXT",
		"listener.name.broker.sasl.enabled.mechanisms": "SCRAM-SHA-512",
		"authorizer.class.name":                        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                  "User:admin",
		"allow.everyone.if.no.acl.found":               "false",
		"auto.create.topics.enable":                    "false",
	} {
		if props[k] != want {
			t.Errorf("kafka-start.sh: %s=%q, want %q", k, props[k], want)
		}
	}
	if !strings.Contains(string(start), `--add-scram "SCRAM-SHA-512=[name=admin,password=$admin]"`) ||
		!strings.Contains(string(start), "admin=$(cat /secrets/kafka-admin-password)") {
		t.Error("kafka-start.sh does not format the storage with the admin's SCRAM credentials from the secrets volume")
	}
	if !slices.Contains(kafka.Entrypoint, "/kinoteka/kafka-start.sh") || !mountsSecrets(kafka) {
		t.Errorf("kafka does not run kafka-start.sh with the secrets (entrypoint %v)", kafka.Entrypoint)
	}
	if hc := strings.Join(kafka.HealthCheck.Test, " "); !strings.Contains(hc, "--command-config") {
		t.Errorf("kafka's healthcheck does not log in: %s", hc)
	}
}

// The setup job gives each service's user exactly what that service does
// with Kafka, read from the service's own configuration under the compose
// environment: auth writes the mail and users topics; the mailer reads the
// mail topic in its group and writes the mail dead letters; films reads the
// users topic in its group and writes its dead letters.
func TestComposeKafkaACLs(t *testing.T) {
	p := loadProject(t)
	authCfg, err := auth.LoadConfig(composeGetenv(env(p.Services["auth"])))
	if err != nil {
		t.Fatal(err)
	}
	mailerCfg, err := mailer.LoadConfig(composeGetenv(env(p.Services["mailer"])))
	if err != nil {
		t.Fatal(err)
	}
	filmsCfg, err := films.LoadConfig(composeGetenv(env(p.Services["films"])))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"auth Write topic " + authCfg.Topic,
		"auth Write topic " + events.UsersTopic,
		"mailer Read topic " + mailerCfg.Topic,
		"mailer Read group " + mailerCfg.Group,
		"mailer Write topic " + events.DLQ(mailerCfg.Topic),
		"films Read topic " + filmsCfg.UsersTopic,
		"films Read group " + filmsCfg.UsersGroup,
		"films Write topic " + events.DLQ(filmsCfg.UsersTopic),
	}
	script, err := os.ReadFile("kafka-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^acl\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$`).FindAllStringSubmatch(string(script), -1) {
		got = append(got, strings.Join(m[1:], " "))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("kafka-setup.sh grants\n  %v\nwant\n  %v", got, want)
	}
	for _, s := range []string{
		"for user in auth mailer films; do",
		`--add-config "SCRAM-SHA-512=[password=$(cat /secrets/kafka-$user-password)]"`,
		"admin=$(cat /secrets/kafka-admin-password)",
	} {
		if !strings.Contains(string(script), s) {
			t.Errorf("kafka-setup.sh lacks %q", s)
		}
	}
	job := p.Services["kafka-topics"]
	if !slices.Contains(job.Entrypoint, "/kinoteka/kafka-setup.sh") || !mountsSecrets(job) {
		t.Errorf("kafka-topics does not run kafka-setup.sh with the secrets (entrypoint %v)", job.Entrypoint)
	}
	for _, name := range []string{"auth", "films", "mailer"} {
		if d, ok := p.Services[name].DependsOn["kafka-topics"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for the Kafka users and ACLs", name)
		}
	}
}

// Whatever is published is published on the host's loopback only.
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
	}
	for _, name := range []string{"kafka", "postgres"} {
		if ports := p.Services[name].Ports; len(ports) > 0 {
			t.Errorf("%s publishes %v", name, ports)
		}
	}
}

// The image build copies the repository; a local data or secrets folder
// (signing key, code secret, databases) must not go with it.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, pattern := range []string{"**/data", "**/secrets", "*.db", "*.pem", ".git"} {
		if !slices.Contains(lines, pattern) {
			t.Errorf(".dockerignore lacks %q", pattern)
		}
	}
}
