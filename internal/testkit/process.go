package testkit

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Build compiles the named main packages (e.g. "./cmd/auth") into a
// temporary folder and returns the binaries' paths by package.
func Build(t *testing.T, moduleRoot string, pkgs ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, p := range pkgs {
		out[p] = filepath.Join(dir, filepath.Base(p))
	}
	return out
}

// FreeAddr returns a loopback address that was free a moment ago. Its port
// is below Linux's ephemeral range (32768–60999), from which both outgoing
// connections and listeners on port 0 take theirs: a port from that range
// could be taken by any of them — another test's client, kfake — between
// this call and the listen that uses it. Only another FreeAddr can pick
// the same port here, and each tries ports at random.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return ln.Addr().String()
	}
	t.Fatal("testkit: no free port between 20000 and 32000")
	return ""
}

// Process is a child process of the test; its output is logged when the
// test fails.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
}

// Start runs bin with args and env (added to the test's environment) and
// stops it with SIGTERM at cleanup.
func Start(t *testing.T, name, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, out: &SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// Stop asks the process to stop (SIGTERM) and waits up to 20 s before killing it.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL — no goodbye, no commit, as a crash
// looks to its peers — and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// ExitCode is the process's exit status once it has exited (Stop waits for
// that), or -1 while it runs.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// WaitHTTP polls url until it answers 200, failing the test after timeout or
// if the process exits first.
func WaitHTTP(t *testing.T, p *Process, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s answered:\n%s", p.Name, url, p.out.String())
		case <-ctx.Done():
			t.Fatalf("%s did not answer %s within %s", p.Name, url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
