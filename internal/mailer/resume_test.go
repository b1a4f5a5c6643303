package mailer

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"kinoteka/internal/catcher"
)

// has reports whether the event's mail arrived.
func (in *inbox) has(eventID string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.byID[mailID(eventID)] > 0
}

// delivered waits for the events' mails and returns how long after since
// the last one arrived. The bound, 30 s, only proves the mechanism: with
// franz-go's 45 s session (before MAILER_SESSION_TIMEOUT and static
// membership) the partitions of a killed mailer stayed still for longer.
func (in *inbox) delivered(t *testing.T, since time.Time, ids ...string) time.Duration {
	t.Helper()
	for {
		all := true
		for _, id := range ids {
			all = all && in.has(id)
		}
		if all {
			return time.Since(since)
		}
		if time.Since(since) > 30*time.Second {
			t.Fatalf("events %v not all mailed 30 s after the kill", ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// owned reads kinoteka_mailer_partitions_owned of a child; -1 while it
// does not answer yet.
func owned(p *mailerProcess) int {
	return int(childMetric(p, "kinoteka_mailer_partitions_owned"))
}

// childMetric reads a sample of a child's /metrics; -1 when there is none.
func childMetric(p *mailerProcess, name string) float64 {
	res, err := http.Get(p.health + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	v, ok := sampleValue(string(body), name)
	if !ok {
		return -1
	}
	return v
}

func (p *mailerProcess) kill(t *testing.T) time.Time {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait()
	return time.Now()
}

// TestResumeAfterKill measures how long a SIGKILLed mailer's partitions
// stand still, with the production session timeout (DefaultConfig): when
// it is restarted at once as a static member (MAILER_INSTANCE_ID), when it
// is restarted as a dynamic member, and when it is not restarted and a
// surviving replica takes its partitions over. The figures are logged
// (docs/reliability.md); the test asserts only that each is well under the
// 45 s it took before.
func TestResumeAfterKill(t *testing.T) {
	kc := newCluster(t, 2)
	in := newInbox()
	_, ln := startCatcher(t, catcher.Config{Received: in.received}, false)
	env := func(group string, extra ...string) []string {
		return append([]string{
			"CHILD_BROKERS=" + strings.Join(kc.brokers, ","),
			"CHILD_GROUP=" + group,
			"CHILD_DATABASE_URL=" + sharedLogURL(t),
			"CHILD_SMTP_ADDR=" + ln.Addr().String(),
		}, extra...)
	}
	n := 0
	// mailOn produces one event to each partition and returns their ids.
	mailOn := func(partitions ...int32) []string {
		var ids []string
		for _, p := range partitions {
			n++
			ids = append(ids, kc.produceEvents(t, fmt.Sprintf("resume-%d", n), 1,
				func(int) int32 { return p }, func(int) string { return fmt.Sprintf("r%d@example.com", n) })...)
		}
		return ids
	}

	for _, tc := range []struct {
		name, instanceID string
	}{
		{"static member restarted", "mailer-a"},
		{"dynamic member restarted", ""},
	} {
		group := "resume-" + strings.ReplaceAll(tc.name, " ", "-")
		e := env(group, "CHILD_INSTANCE_ID="+tc.instanceID)
		first := startMailerProcess(t, e)
		in.delivered(t, time.Now(), mailOn(0, 1)...) // it owns both partitions
		if procs := childMetric(first, "go_sched_gomaxprocs_threads"); procs != 1 {
			t.Errorf("the mailer runs on %v threads; want MAILER_PROCS's default, 1", procs)
		}
		killed := first.kill(t)
		second := startMailerProcess(t, e)
		took := in.delivered(t, killed, mailOn(0, 1)...)
		t.Logf("%s: mail flows again %.1f s after the SIGKILL", tc.name, took.Seconds())
		// Every group reads the whole topic: no mailer of this case may
		// mail the next case's events.
		second.kill(t)
	}

	// Two replicas, one killed for good: the survivor takes its partition
	// over once the session timeout has passed.
	e := env("resume-takeover")
	a := startMailerProcess(t, e)
	b := startMailerProcess(t, e)
	waitFor(t, "each replica to own a partition", func() bool {
		return owned(a) == 1 && owned(b) == 1
	})
	killed := a.kill(t)
	took := in.delivered(t, killed, mailOn(0, 1)...)
	if n := owned(b); n != 2 {
		t.Errorf("the survivor owns %d partitions, want both", n)
	}
	t.Logf("survivor took over: both partitions mailed %.1f s after the SIGKILL (session timeout %s)",
		took.Seconds(), DefaultConfig().SessionTimeout)
	b.kill(t)

	// A static member stopped gracefully leaves the group itself (franz-go
	// would not), so its partitions move at once, not after the session.
	e = env("resume-static-stop")
	c := startMailerProcess(t, append(e, "CHILD_INSTANCE_ID=mailer-c"))
	d := startMailerProcess(t, append(e, "CHILD_INSTANCE_ID=mailer-d"))
	waitFor(t, "each static replica to own a partition", func() bool { return owned(c) == 1 && owned(d) == 1 })
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	stopped := time.Now()
	took = in.delivered(t, stopped, mailOn(0, 1)...)
	if took >= DefaultConfig().SessionTimeout {
		t.Errorf("the partitions of a static member stopped with SIGTERM moved after %s, the session timeout: it did not leave the group", took)
	}
	t.Logf("static member stopped with SIGTERM: both partitions mailed %.1f s after it exited", took.Seconds())
}
