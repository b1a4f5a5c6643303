package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/argon2id"
)

// Argon2Params are argon2id's cost parameters. They are written into every
// hash (PHC string format), so raising them later does not break old hashes:
// each is verified with its own parameters and re-hashed at the next login.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon2 is OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

var phcB64 = base64.RawStdEncoding

// hashPassword returns password's argon2id hash as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string, p Argon2Params, rnd io.Reader) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2id.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2id.Version, p.Memory, p.Time, p.Threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC hash, comparing in
// constant time. The error is for a hash it cannot read.
func checkPassword(password, hash string) (bool, error) {
	p, salt, key, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	got := argon2id.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// needsRehash reports whether hash was made with weaker parameters than p.
func needsRehash(hash string, p Argon2Params) bool {
	h, _, _, err := parsePHC(hash)
	return err != nil || h.Memory < p.Memory || h.Time < p.Time || h.Threads < p.Threads ||
		h.SaltLen < p.SaltLen || h.KeyLen < p.KeyLen
}

var errBadHash = errors.New("not an argon2id PHC string")

// parsePHC reads $argon2id$v=19$m=…,t=…,p=…$salt$hash. It bounds the
// parameters, so a corrupted row cannot make one login allocate gigabytes.
func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2id.Version) {
		return Argon2Params{}, nil, nil, errBadHash
	}
	var p Argon2Params
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return Argon2Params{}, nil, nil, errBadHash
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(min(n, 255))
		default:
			return Argon2Params{}, nil, nil, errBadHash
		}
	}
	salt, err1 := phcB64.DecodeString(parts[4])
	key, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 ||
		p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 64 || p.Threads < 1 || p.Threads > 64 {
		return Argon2Params{}, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// hashGate bounds the argon2id computations in flight. Each holds
// Argon2Params.Memory (19 MiB) for its whole run, so without a bound N
// concurrent logins hold N × 19 MiB (issue 11: 40 logins for unknown
// addresses took the process from 83 MB to 846 MB resident). Hashing is
// CPU-bound, so more hashes in flight than cores buy no throughput, only
// memory: with one slot per core the hashes run as fast as unbounded ones,
// and a request beyond them waits its turn (in arrival order: a channel
// queues its waiting senders), at most wait, then is refused with 503 and
// Retry-After.
type hashGate struct {
	slots   chan struct{}
	wait    time.Duration
	waiting atomic.Int64 // requests queued for a slot now
	refused func()       // counts a refusal; nil counts nothing
}

func newHashGate(slots int, wait time.Duration, refused func()) *hashGate {
	return &hashGate{slots: make(chan struct{}, slots), wait: wait, refused: refused}
}

// acquire takes a slot, waiting at most g.wait (not at all when it is 0),
// and returns the function that gives it back. The error is errHashBusy,
// or ctx's when the client went away while waiting.
func (g *hashGate) acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.slots <- struct{}{}:
		return g.release, nil
	default:
	}
	if g.wait > 0 {
		g.waiting.Add(1)
		defer g.waiting.Add(-1)
		timer := time.NewTimer(g.wait)
		defer timer.Stop()
		select {
		case g.slots <- struct{}{}:
			return g.release, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
	if g.refused != nil {
		g.refused()
	}
	return nil, errHashBusy(g.wait)
}

func (g *hashGate) release() { <-g.slots }

// retryAfterError carries how long a refused client should wait: fail
// turns it into a Retry-After header.
type retryAfterError struct{ after time.Duration }

func (e *retryAfterError) Error() string { return "retry after " + e.after.String() }

// retryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *retryAfterError) retryAfterSeconds() int {
	return max(1, int(math.Ceil(e.after.Seconds())))
}

// errHashBusy is the 503 of a request that found every hashing slot taken
// for as long as it could wait. It does not depend on the address: a login
// for an unknown address waits for a slot for its dummy hash like any
// other. Retry-After is the wait itself: the queue was full that long, so
// sooner is unlikely to do better.
func errHashBusy(waited time.Duration) error {
	e := &retryAfterError{after: waited}
	return &apperr.Error{
		Kind: apperr.Unavailable, Code: "busy",
		Message: fmt.Sprintf("the server is busy checking passwords; try again in %d seconds", e.retryAfterSeconds()),
		Cause:   e,
	}
}
