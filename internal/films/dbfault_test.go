package films

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"kinoteka/internal/sqldb/sqldbtest"
)

// Each pooled connection the server terminated (an administrator, a
// restart, a failover) used to turn the next search that drew it into a
// 500. Searches are reads: they run again on a live connection.
func TestSearchesSurviveTerminatedConnections(t *testing.T) {
	sqldbtest.NeedPostgres(t, "terminates the server's connections")
	dbURL := sqldbtest.FreshPostgresURL(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.Issuer, cfg.Audience = dbURL, testIssuer, testAudience
	cfg.JWKSURL = "http://" + dead.Addr().String() + "/.well-known/jwks.json"
	cfg.ReadCacheTTL = 0 // every search reaches the database
	r := startRun(t, cfg)

	// burst sends n searches at once and returns the answers that were not 200.
	burst := func(n int) []string {
		var (
			mu     sync.Mutex
			failed []string
			wg     sync.WaitGroup
		)
		for i := range n {
			wg.Go(func() {
				resp, err := http.Get(fmt.Sprintf("%s/v1/films?q=%c&limit=5", r.url, 'a'+i))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err.Error())
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					body, _ := io.ReadAll(resp.Body)
					failed = append(failed, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
			})
		}
		wg.Wait()
		return failed
	}
	for round := range 3 {
		if failed := burst(8); len(failed) > 0 {
			t.Fatalf("round %d, before terminating: %v", round, failed)
		}
		if n := sqldbtest.TerminateConnections(t, dbURL); n < 2 {
			t.Fatalf("round %d: terminated %d connections, want the pool's", round, n)
		}
		if failed := burst(8); len(failed) > 0 {
			t.Errorf("round %d, searches after the connections were terminated: %v", round, failed)
		}
	}
}
