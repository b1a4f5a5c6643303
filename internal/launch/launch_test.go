package launch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
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
		Name: "films", AddrEnv: "FILMS_ADDR", DefaultAddr: "127.0.0.1:0",
		Load: func(getenv func(string) string) (struct{}, error) {
			if getenv("FILMS_BAD") != "" {
				return struct{}{}, errors.New("FILMS_BAD: nonsense")
			}
			return struct{}{}, nil
		},
		Run: func(context.Context, struct{}, *slog.Logger, net.Listener) error {
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
	} {
		err := Run(context.Background(), s, nil, func(k string) string { return tc.env[k] }, io.Discard)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("env %v: error %v does not say %q", tc.env, err, w)
			}
		}
	}
}
