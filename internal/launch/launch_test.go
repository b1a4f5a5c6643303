package launch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"kinoteka/internal/testkit"
)

// A service binary that cannot start says why in one error that names the
// variable to change, and never reaches the service's Run.
func TestRunStartUpErrorsNameTheVariable(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := Service[struct{}]{
		Name: "films", AddrEnv: "FILMS_ADDR", DefaultAddr: "127.0.0.1:0", OpsAddrEnv: "FILMS_OPS_ADDR", DefaultOpsAddr: "127.0.0.1:0",
		Load: func(getenv func(string) string) (struct{}, error) {
			if getenv("FILMS_BAD") != "" {
				return struct{}{}, errors.New("FILMS_BAD: nonsense")
			}
			return struct{}{}, nil
		},
		Run: func(context.Context, struct{}, *slog.Logger, Listeners) error {
			t.Error("Run reached")
			return nil
		},
	}
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"LOG_LEVEL": "loud"}, []string{"films: config", "LOG_LEVEL", "loud"}},
		{map[string]string{"FILMS_BAD": "1"}, []string{"films: config", "FILMS_BAD"}},
		{map[string]string{"FILMS_ADDR": busy.Addr().String()}, []string{"films: listen on " + busy.Addr().String(), "FILMS_ADDR", "address already in use"}},
		{map[string]string{"FILMS_OPS_ADDR": busy.Addr().String()}, []string{"films: operators' listener: listen on " + busy.Addr().String(), "FILMS_OPS_ADDR", "address already in use"}},
	} {
		err := Run(context.Background(), s, nil, func(k string) string { return tc.env[k] }, io.Discard)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("env %v: error %v does not say %q", tc.env, err, w)
			}
		}
	}
}

// The service gets its two listeners on the two configured addresses, and
// "healthcheck" probes the operators' one: the public one answers the API
// only, so a probe there would fail.
func TestRunOpensBothListenersAndProbesTheOpsOne(t *testing.T) {
	type got struct{ public, ops string }
	seen := make(chan got, 1)
	s := Service[struct{}]{
		Name: "films", AddrEnv: "FILMS_ADDR", OpsAddrEnv: "FILMS_OPS_ADDR",
		Load: func(func(string) string) (struct{}, error) { return struct{}{}, nil },
		Run: func(ctx context.Context, _ struct{}, _ *slog.Logger, ln Listeners) error {
			defer ln.Close()
			seen <- got{ln.Public.Addr().String(), ln.Ops.Addr().String()}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
			var lc Lifecycle
			lc.Serve("api", ln.Public, http.NotFoundHandler())
			lc.Serve("ops", ln.Ops, mux)
			return lc.Run(ctx)
		},
	}
	public, ops := testkit.FreeAddr(t), testkit.FreeAddr(t)
	env := map[string]string{"FILMS_ADDR": public, "FILMS_OPS_ADDR": ops}
	getenv := func(k string) string { return env[k] }
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, nil, getenv, io.Discard) }()
	if g := <-seen; g.public != public || g.ops != ops {
		t.Errorf("listeners on %+v, want public %s, ops %s", g, public, ops)
	}
	if err := Run(context.Background(), s, []string{"healthcheck"}, getenv, io.Discard); err != nil {
		t.Errorf("healthcheck of the operators' listener: %v", err)
	}
	env["FILMS_OPS_ADDR"] = public // what a probe of the public listener would get
	if err := Run(context.Background(), s, []string{"healthcheck"}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("healthcheck of the public listener: %v, want a 404", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A service without a public listener (the mailer) gets only the
// operators' one.
func TestRunWithoutAPublicListener(t *testing.T) {
	var ln Listeners
	s := Service[struct{}]{
		Name: "mailer", OpsAddrEnv: "MAILER_ADDR", DefaultOpsAddr: "127.0.0.1:0",
		Load: func(func(string) string) (struct{}, error) { return struct{}{}, nil },
		Run:  func(_ context.Context, _ struct{}, _ *slog.Logger, l Listeners) error { ln = l; l.Close(); return nil },
	}
	if err := Run(context.Background(), s, nil, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatal(err)
	}
	if ln.Public != nil || ln.Ops == nil {
		t.Errorf("listeners %+v: want the operators' one only", ln)
	}
}
