package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"kinoteka/internal/catcher"
	"kinoteka/internal/launch"
)

// childEnv makes the test binary run a mailer instead of the tests, so that
// a test can kill a real mailer process with SIGKILL.
const childEnv = "KINOTEKA_MAILER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild(os.Getenv))
	}
	os.Exit(m.Run())
}

// runChild is a mailer process configured by the parent test: production
// tuning and defaults, except what the CHILD_* variables set.
func runChild(getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := net.FileListener(os.NewFile(3, "ops listener")) // the parent's (startMailerProcess)
	if err != nil {
		log.Error("listen", "err", err)
		return 1
	}
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = strings.Split(getenv("CHILD_BROKERS"), ",")
	cfg.Group = getenv("CHILD_GROUP")
	cfg.DatabaseURL = getenv("CHILD_DATABASE_URL")
	cfg.SMTP = plainSMTP(getenv("CHILD_SMTP_ADDR"))
	cfg.InstanceID = getenv("CHILD_INSTANCE_ID")
	if v := getenv("CHILD_SESSION_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			log.Error("CHILD_SESSION_TIMEOUT", "err", err)
			return 1
		}
		cfg.SessionTimeout = d
	}
	// Run, as the binary: on one thread (MAILER_PROCS), as in production.
	if err := Run(ctx, cfg, log, launch.Listeners{Ops: ln}); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// mailerProcess is a child mailer.
type mailerProcess struct {
	cmd    *exec.Cmd
	health string
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done
}

// wait waits for the process to exit and returns its status.
func (p *mailerProcess) wait() error {
	<-p.done
	return p.err
}

func startMailerProcess(t *testing.T, env []string) *mailerProcess {
	t.Helper()
	// The child serves on a listener opened here and handed over as its
	// file descriptor 3: no other process can take the port in between,
	// as one could a port chosen free and closed again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // f keeps the socket open
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, childEnv+"=1")...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &mailerProcess{cmd: cmd, health: "http://" + ln.Addr().String(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestMailerKilledMidRun kills a mailer process with SIGKILL — no commit,
// no goodbye to the group — while it works through 1,000 queued events,
// and starts another: every event must be mailed, and the delivery log
// should keep the re-delivered ones from being mailed again. The only
// duplicates it cannot prevent are mails the SMTP server accepted in the
// instant before the kill, before the log recorded them.
func TestMailerKilledMidRun(t *testing.T) {
	const partitions, total = 3, 1000
	kc := newCluster(t, partitions)
	in := newInbox()
	_, ln := startCatcher(t, catcher.Config{Received: in.received, MaxMessages: 2 * total}, false)
	ids := kc.produceEvents(t, "ev", total, func(i int) int32 { return int32(i % partitions) }, func(i int) string { return fmt.Sprintf("u%d@example.com", i) })
	env := []string{
		"CHILD_BROKERS=" + strings.Join(kc.brokers, ","),
		"CHILD_GROUP=mailer-kill-test",
		"CHILD_DATABASE_URL=" + sharedLogURL(t),
		"CHILD_SMTP_ADDR=" + ln.Addr().String(),
		// A short session, so that the successor of the killed process
		// does not wait for the dead member long.
		"CHILD_SESSION_TIMEOUT=2s",
	}

	first := startMailerProcess(t, env)
	waitFor(t, "a third of the mails", func() bool { return in.total() >= total/3 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.wait()
	atKill := in.total()
	committed := kc.committed(t, "mailer-kill-test", partitions)
	var uncommitted int64
	for _, c := range committed {
		uncommitted -= max(c, 0)
	}
	uncommitted += int64(atKill)

	second := startMailerProcess(t, env)
	kc.waitSettled(t, "mailer-kill-test", partitions)
	skipped := metric(t, &mailer{health: second.health}, "kinoteka_mailer_duplicates_skipped_total")
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(); err != nil {
		t.Errorf("the second mailer after SIGTERM: %v", err)
	}

	missing, twice := in.tally(ids)
	t.Logf("killed after %d of %d mails, %d of them not yet committed; the successor skipped %d re-delivered events by the delivery log; %d missing, %d mailed twice",
		atKill, total, uncommitted, skipped, missing, twice)
	if missing != 0 {
		t.Errorf("%d events were never mailed", missing)
	}
	// One mail per partition at most can be caught between "accepted" and
	// "logged" by the kill.
	if twice > partitions {
		t.Errorf("%d mails sent twice; the delivery log should have stopped all but those in flight at the kill", twice)
	}
}
