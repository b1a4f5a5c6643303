package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"kinoteka/internal/testkit"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runNoPanic is run, with a panic turned into an error so that the test
// reports it rather than dying with it.
func runNoPanic(args []string, env map[string]string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return run(ctx, args, func(k string) string { return env[k] }, io.Discard, io.Discard)
}

// holdPort listens on a free loopback port until the test ends and returns its address.
func holdPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// withFlag returns args with the value of flag replaced (or added).
func withFlag(args []string, flag, value string) []string {
	args = slices.Clone(args)
	if i := slices.Index(args, flag); i >= 0 {
		args[i+1] = value
		return args
	}
	return append(args, flag, value)
}

// withoutFlag returns args without flag and its value.
func withoutFlag(args []string, flag string) []string {
	if i := slices.Index(args, flag); i >= 0 {
		return slices.Delete(slices.Clone(args), i, i+2)
	}
	return args
}

// Every way the embedded mode can fail to start ends in one line naming
// what failed, where, why and what to change — never in a panic — and
// leaves no port open behind it.
func TestStartupErrors(t *testing.T) {
	aFile := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	busy := "BUSY" // replaced by a port the test holds
	type startCase struct {
		name  string
		flag  string // set to value; empty for none
		value string
		env   map[string]string
		want  []string // every one must be in the error
	}
	tests := []startCase{
		{name: "auth port busy", flag: "-auth-addr", value: busy,
			want: []string{"auth HTTP: listen on BUSY: address already in use", "another Kinoteka?", "change it with -auth-addr or KINOTEKA_AUTH_ADDR"}},
		{name: "films port busy", flag: "-films-addr", value: busy,
			want: []string{"films HTTP: listen on BUSY: address already in use", "change it with -films-addr or KINOTEKA_FILMS_ADDR"}},
		{name: "mailer port busy", flag: "-mailer-addr", value: busy,
			want: []string{"mailer health/metrics: listen on BUSY: address already in use", "change it with -mailer-addr or KINOTEKA_MAILER_ADDR"}},
		{name: "SMTP port busy", flag: "-smtp-addr", value: busy,
			want: []string{"mail catcher SMTP: listen on BUSY: address already in use (another Mailpit or Kinoteka?); change it with -smtp-addr or KINOTEKA_SMTP_ADDR"}},
		{name: "inbox port busy", flag: "-mail-ui-addr", value: busy,
			want: []string{"mail catcher inbox: listen on BUSY: address already in use", "change it with -mail-ui-addr or KINOTEKA_MAIL_UI_ADDR"}},
		{name: "web port busy", flag: "-web-addr", value: busy,
			want: []string{"web site: listen on BUSY: address already in use", "change it with -web-addr or KINOTEKA_WEB_ADDR"}},
		{name: "auth operators' port busy", flag: "-auth-ops-addr", value: busy,
			want: []string{"auth health/metrics: listen on BUSY: address already in use", "change it with -auth-ops-addr or KINOTEKA_AUTH_OPS_ADDR"}},
		{name: "films operators' port busy", flag: "-films-ops-addr", value: busy,
			want: []string{"films health/metrics: listen on BUSY: address already in use", "change it with -films-ops-addr or KINOTEKA_FILMS_OPS_ADDR"}},
		{name: "web operators' port busy", flag: "-web-ops-addr", value: busy,
			want: []string{"web health/metrics: listen on BUSY: address already in use", "change it with -web-ops-addr or KINOTEKA_WEB_OPS_ADDR"}},
		{name: "Kafka port busy", flag: "-kafka-addr", value: busy,
			want: []string{"Kafka broker: listen on BUSY: address already in use", "change it with -kafka-addr or KINOTEKA_KAFKA_ADDR"}},
		{name: "Kafka address without a port", flag: "-kafka-addr", value: "nonsense",
			want: []string{"Kafka broker: listen on nonsense: missing port in address; change it with -kafka-addr or KINOTEKA_KAFKA_ADDR"}},
		{name: "Kafka on another host", flag: "-kafka-addr", value: "192.0.2.1:9092",
			want: []string{"Kafka broker: listen on 192.0.2.1:9092: the in-process broker listens on 127.0.0.1 only"}},
		{name: "SMTP on an address not of this machine", flag: "-smtp-addr", value: "192.0.2.1:1025",
			want: []string{"mail catcher SMTP: listen on 192.0.2.1:1025: cannot assign requested address"}},
		{name: "port out of range", flag: "-films-addr", value: "127.0.0.1:99999",
			want: []string{"films HTTP: listen on 127.0.0.1:99999: invalid port"}},
		{name: "data folder under a file", flag: "-data", value: filepath.Join(aFile, "data"),
			want: []string{"data folder " + filepath.Join(aFile, "data") + ": cannot create it: not a directory; change it with -data or KINOTEKA_DATA"}},
		{name: "data folder is a file", flag: "-data", value: aFile,
			want: []string{"data folder " + aFile + ": cannot create it: not a directory"}},
		{name: "empty data folder", flag: "-data", value: "",
			want: []string{`-data "": want a folder`}},
		{name: "log file under a file", flag: "-log-file", value: filepath.Join(aFile, "log"),
			want: []string{"log file " + filepath.Join(aFile, "log") + ": cannot open it: not a directory; change it with -log-file or KINOTEKA_LOG_FILE"}},
		{name: "no partitions", flag: "-partitions", value: "0",
			want: []string{`-partitions "0": want at least 1`}},
		{name: "partitions not a number", flag: "-partitions", value: "three",
			want: []string{`invalid value "three" for flag -partitions: want a whole number`}},
		{name: "unknown flag", flag: "-colour", value: "blue",
			want: []string{"flag provided but not defined: -colour (kinoteka -h lists the flags)"}},
		{name: "bad variables, all at once", env: map[string]string{"KINOTEKA_LOG_LEVEL": "loud", "KINOTEKA_THROTTLE": "redis", "KINOTEKA_PARTITIONS": "many"},
			want: []string{"KINOTEKA_LOG_LEVEL=loud: want debug, info, warn or error", "KINOTEKA_THROTTLE=redis: want memory, database or off", "KINOTEKA_PARTITIONS=many: want a whole number"}},
		{name: "a flag's bad value is named as the flag", flag: "-log-level", value: "loud", env: map[string]string{"KINOTEKA_LOG_LEVEL": "debug"},
			want: []string{`-log-level "loud": want debug, info, warn or error`}},
	}
	if runtime.GOOS == "linux" {
		// A folder no one may write in, even root (these tests may run as root).
		tests = append(tests, startCase{name: "data folder not writable", flag: "-data", value: "/sys/kernel",
			want: []string{"data folder /sys/kernel: cannot write in it: ", "; change it with -data or KINOTEKA_DATA"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := freeArgs(t, t.TempDir())
			value := tt.value
			if value == busy {
				value = holdPort(t)
			}
			if tt.flag != "" {
				args = withFlag(args, tt.flag, value)
			}
			for _, set := range (&config{}).settings() { // freeArgs' flags would hide the variables
				if _, ok := tt.env[set.env]; ok && "-"+set.name != tt.flag {
					args = withoutFlag(args, "-"+set.name)
				}
			}
			err := runNoPanic(args, tt.env)
			if err == nil {
				t.Fatal("run started")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, "panic") {
				t.Errorf("not one line, or a panic: %q", msg)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, busy, value); !strings.Contains(msg, w) {
					t.Errorf("error %q\nwant it to contain %q", msg, w)
				}
			}
			// Nothing left listening: every other port is free again.
			for i, a := range args {
				if strings.HasSuffix(a, "-addr") && i+1 < len(args) && args[i+1] != value {
					ln, err := net.Listen("tcp", args[i+1])
					if err != nil {
						t.Errorf("%s %s still taken after the failed start: %v", a, args[i+1], err)
						continue
					}
					ln.Close()
				}
			}
		})
	}
}

// A second instance on a data folder in use is refused, naming the process
// that holds it, before it writes anything there; once the first is done,
// the folder is free again.
func TestDataFolderLock(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseConfig(freeArgs(t, dir), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	first, err := newSystem(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)

	// flock locks belong to an open file, so a second open in this very
	// process conflicts as another process would.
	second, err := parseConfig(freeArgs(t, dir), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newSystem(second, slog.New(slog.DiscardHandler))
	var inUse *errDataInUse
	if !errors.As(err, &inUse) {
		first.close()
		t.Fatalf("second instance on the same data folder: %v, want it refused", err)
	}
	want := fmt.Sprintf("data folder %s is in use by process %d; stop it or use another folder with -data or KINOTEKA_DATA", dir, os.Getpid())
	if err.Error() != want {
		t.Errorf("refusal:\n got %q\nwant %q", err, want)
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Errorf("the refused instance changed the data folder:\nbefore %v\nafter  %v", before, after)
	}

	first.close()
	again, err := newSystem(second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("after the first instance closed: %v", err)
	}
	again.close()
}

// listing describes every file under dir: path, size and modification time.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s", path, info.Size(), info.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The built binary, as a person runs it: a failed start is exit status 1
// and one line on standard error, and a second instance on a data folder
// in use names the first one's process id.
func TestBinaryStartupFailure(t *testing.T) {
	bin := testkit.Build(t, filepath.Join("..", ".."), "./cmd/kinoteka")["./cmd/kinoteka"]

	runBin := func(t *testing.T, args ...string) (stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var errBuf strings.Builder
		cmd.Stderr = &errBuf
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("%s %v: %v, want a failed start\nstderr: %s", bin, args, err, errBuf.String())
		}
		return errBuf.String(), exit.ExitCode()
	}
	checkOneLine := func(t *testing.T, stderr string, code int, wantPrefix string) {
		t.Helper()
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("standard error is not one line:\n%s", stderr)
		}
		for _, bad := range []string{"goroutine", "panic", "SIGSEGV"} {
			if strings.Contains(stderr, bad) {
				t.Errorf("standard error mentions %q:\n%s", bad, stderr)
			}
		}
		if !strings.HasPrefix(stderr, wantPrefix) {
			t.Errorf("standard error %q, want it to begin %q", stderr, wantPrefix)
		}
	}

	t.Run("busy SMTP port", func(t *testing.T) {
		addr := holdPort(t)
		stderr, code := runBin(t, withFlag(freeArgs(t, t.TempDir()), "-smtp-addr", addr)...)
		checkOneLine(t, stderr, code, "kinoteka: mail catcher SMTP: listen on "+addr+": address already in use")
	})

	t.Run("data folder in use", func(t *testing.T) {
		dir := t.TempDir()
		first := exec.Command(bin, freeArgs(t, dir)...)
		stdout, err := first.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var firstErr testkit.SyncBuffer
		first.Stderr = &firstErr
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		exited := make(chan error, 1)
		go func() {
			// The banner is printed once every service answers; then keep
			// draining so the first instance never blocks on its stdout.
			sc := bufio.NewScanner(stdout)
			running := false
			for !running && sc.Scan() {
				running = strings.Contains(sc.Text(), "Kinoteka is running")
			}
			ready <- running
			_, _ = io.Copy(io.Discard, stdout)
			exited <- first.Wait()
		}()
		select {
		case running := <-ready:
			if !running {
				t.Fatalf("the first instance did not start: %v; its stderr:\n%s", <-exited, firstErr.String())
			}
		case <-time.After(2 * time.Minute):
			_ = first.Process.Kill()
			t.Fatalf("the first instance did not start; its stderr:\n%s", firstErr.String())
		}

		stderr, code := runBin(t, freeArgs(t, dir)...)
		checkOneLine(t, stderr, code, "kinoteka: data folder "+dir+" is in use by process "+strconv.Itoa(first.Process.Pid)+"; ")

		if err := first.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("first instance after SIGINT: %v; stderr:\n%s", err, firstErr.String())
			}
		case <-time.After(time.Minute):
			_ = first.Process.Kill()
			t.Fatal("the first instance did not stop after SIGINT")
		}
	})
}
