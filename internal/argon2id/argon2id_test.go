package argon2id

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/argon2"
)

// x/crypto's published argon2id vectors (argon2_test.go, from the reference
// implementation): password "password", salt "somesalt".
var vectors = []struct {
	time, memory uint32
	threads      uint8
	hash         string
}{
	{1, 64, 1, "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
	{2, 64, 1, "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
	{2, 64, 2, "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
	{3, 256, 2, "4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b"},
	{4, 4096, 4, "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
	{4, 1024, 8, "8dafa8e004f8ea96bf7c0f93eecf67a6047476143d15577f"},
	{2, 64, 3, "4a15b31aec7c2590b87d1f520be7d96f56658172deaa3079"},
	{3, 1024, 6, "1640b932f4b60e272f5d2207b9a9c626ffa1bd88d2349016"},
}

// Each vector is derived twice in a row, largest memory first, so that most
// runs work in blocks an earlier, different hash left behind; and once more
// with the block function in Go where the assembly one is in use.
func TestVectors(t *testing.T) {
	defer func(sse4 bool) { useSSE4 = sse4 }(useSSE4)
	for _, sse4 := range []bool{useSSE4, false} {
		useSSE4 = sse4
		for _, v := range []int{4, 5, 7, 3, 0, 1, 2, 6, 4} {
			vec := vectors[v]
			want, _ := hex.DecodeString(vec.hash)
			for range 2 {
				got := IDKey([]byte("password"), []byte("somesalt"), vec.time, vec.memory, vec.threads, uint32(len(want)))
				if !bytes.Equal(got, want) {
					t.Errorf("sse4=%v vector %d: got %x, want %x", sse4, v, got, want)
				}
			}
		}
	}
}

// The same bytes as x/crypto for auth's parameters and around them: lanes,
// passes, memory not a multiple of the lanes, the smallest memory, and key
// lengths below, at and above BLAKE2b's 64 bytes.
func TestSameAsXCrypto(t *testing.T) {
	cases := []struct {
		time, memory uint32
		threads      uint8
		keyLen       uint32
	}{
		{2, 19 * 1024, 1, 32}, // auth's default
		{1, 8, 1, 16},
		{3, 100, 2, 64},
		{1, 1000, 3, 65},
		{2, 19*1024 + 7, 4, 100},
		{2, 2048, 1, 32},
	}
	password, salt := []byte("correct horse battery"), []byte("0123456789abcdef")
	for round := range 2 { // the second round reuses memory of other sizes
		for _, c := range cases {
			name := fmt.Sprintf("round%d/t=%d,m=%d,p=%d,len=%d", round, c.time, c.memory, c.threads, c.keyLen)
			want := argon2.IDKey(password, salt, c.time, c.memory, c.threads, c.keyLen)
			if got := IDKey(password, salt, c.time, c.memory, c.threads, c.keyLen); !bytes.Equal(got, want) {
				t.Errorf("%s: got %x, want %x", name, got, want)
			}
		}
	}
}

func TestPanicsLikeXCrypto(t *testing.T) {
	mustPanic := func(about string, f func()) {
		t.Helper()
		defer func() {
			if r := fmt.Sprint(recover()); !strings.Contains(r, about) {
				t.Errorf("panic %q, want one about %s", r, about)
			}
		}()
		f()
	}
	mustPanic("rounds", func() { IDKey([]byte("p"), []byte("saltsalt"), 0, 64, 1, 32) })
	mustPanic("parallelism", func() { IDKey([]byte("p"), []byte("saltsalt"), 1, 64, 0, 32) })
}

// Twenty hashes at auth's parameters allocate their 19 MiB about once, not
// twenty times. (With the race detector a sync.Pool drops a quarter of what
// it is given, on purpose; half is the bound either way.)
func TestMemoryIsReused(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection empties the pool meanwhile
	const hashes, memoryKiB = 20, 19 * 1024
	IDKey([]byte("warm"), []byte("0123456789abcdef"), 1, memoryKiB, 1, 32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range hashes {
		IDKey(fmt.Appendf(nil, "password %d", i), []byte("0123456789abcdef"), 1, memoryKiB, 1, 32)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(hashes * memoryKiB * 1024 / 2); allocated > limit {
		t.Errorf("%d hashes allocated %d MiB; at most %d MiB if memory is reused", hashes, allocated>>20, limit>>20)
	}
}

// BenchmarkIDKey compares x/crypto's IDKey with this one at auth's
// parameters, reporting the minor page faults per hash (getrusage) beside
// the time and allocations.
func BenchmarkIDKey(b *testing.B) {
	password, salt := []byte("correct horse battery"), []byte("0123456789abcdef")
	for _, impl := range []struct {
		name string
		key  func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	}{
		{"xcrypto", argon2.IDKey},
		{"pooled", IDKey},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			faults := minorFaults(b)
			for b.Loop() {
				impl.key(password, salt, 2, 19*1024, 1, 32)
			}
			b.ReportMetric(float64(minorFaults(b)-faults)/float64(b.N), "faults/op")
		})
	}
}

func minorFaults(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Minflt
}
