package https_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway/edge/https"
	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// blobSealer is the store's sealed-blob format over a real keyring (what
// acme.SealWith gives the app).
type blobSealer struct{ kr *seal.Keyring }

func (s blobSealer) Seal(key string, p []byte) ([]byte, error) { return data.SealBlob(s.kr, key, p) }
func (s blobSealer) Open(key string, b []byte) ([]byte, error) { return data.OpenBlob(s.kr, key, b) }

func newSealer(t *testing.T) blobSealer {
	t.Helper()
	secret := make([]byte, seal.KeySize)
	_, _ = rand.Read(secret)
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return blobSealer{kr}
}

// boltStore is a real bbolt store in a temporary directory.
func boltStore(t *testing.T) *boltdb.Store {
	t.Helper()
	s, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cluster is what replicas share: one certificate (from one CA), the
// keyring and a clock.
type cluster struct {
	ca                *httpstest.CA
	certFile, keyFile string
	sealer            blobSealer
	clock             *clock
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{ca: httpstest.NewCA(t), sealer: newSealer(t), clock: newClock()}
	c.certFile, c.keyFile = c.ca.Issue(t).Files(t, t.TempDir())
	return c
}

// replica is a Terminator of the cluster sharing its session ticket keys
// through store; reload < 0: only SyncTicketKeys reads them.
func (c *cluster) replica(t *testing.T, store https.TicketKeyStore, reload time.Duration) *fixture {
	f := start(t, func(o *https.Options) {
		o.CertFile, o.KeyFile = c.certFile, c.keyFile
		o.TicketKeys, o.TicketSealer, o.TicketReload = store, c.sealer, reload
		o.Now = c.clock.Now
	})
	f.ca = c.ca
	return f
}

// resumed connects to f with cache (a client's session cache), sends one
// request so that a TLS 1.3 ticket arrives, and reports whether the
// session was resumed.
func resumed(t *testing.T, f *fixture, cache tls.ClientSessionCache, version uint16) bool {
	t.Helper()
	c, err := f.dial(&tls.Config{ServerName: "localhost", ClientSessionCache: cache, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "hello") {
		t.Fatalf("response %q", b)
	}
	st := c.ConnectionState()
	if st.Version != version {
		t.Fatalf("negotiated %s", tls.VersionName(st.Version))
	}
	return st.DidResume
}

func syncKeys(t *testing.T, fs ...*fixture) {
	t.Helper()
	for _, f := range fs {
		if err := f.term.SyncTicketKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

var versions = []uint16{tls.VersionTLS13, tls.VersionTLS12}

func TestSessionTicketResumesOnAnotherReplica(t *testing.T) {
	cl := newCluster(t)
	shared := boltStore(t)
	for _, v := range versions {
		for _, c := range []struct {
			name   string
			shared bool
		}{{"shared store", true}, {"separate stores", false}} {
			t.Run(tls.VersionName(v)+"/"+c.name, func(t *testing.T) {
				a := cl.replica(t, shared, -1)
				var b *fixture
				if c.shared {
					b = cl.replica(t, shared, -1)
				} else {
					b = cl.replica(t, boltStore(t), -1)
				}
				cache := tls.NewLRUClientSessionCache(4)
				if resumed(t, a, cache, v) {
					t.Fatal("first connection resumed")
				}
				if got := resumed(t, b, cache, v); got != c.shared {
					t.Fatalf("DidResume on the second replica = %v; want %v", got, c.shared)
				}
			})
		}
	}
}

// TestSessionTicketKeyRotation: sessions made under one key, then the set
// rotated: the key resumes while it is among the TicketKeysKept (3), and
// no longer once three newer keys replaced it.
func TestSessionTicketKeyRotation(t *testing.T) {
	for _, v := range versions {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			store, cl := boltStore(t), newCluster(t)
			clk := cl.clock
			a := cl.replica(t, store, -1)
			b := cl.replica(t, store, -1)
			var caches [3]tls.ClientSessionCache
			for i := range caches {
				caches[i] = tls.NewLRUClientSessionCache(4)
				if resumed(t, a, caches[i], v) {
					t.Fatal("first connection resumed")
				}
			}
			before, err := store.GetBlob(context.Background(), https.TicketKeysBlob)
			if err != nil {
				t.Fatal(err)
			}
			syncKeys(t, a, b) // not due: nothing changes
			if after, _ := store.GetBlob(context.Background(), https.TicketKeysBlob); !bytes.Equal(after.Value, before.Value) {
				t.Fatal("keys rotated before TicketRotation passed")
			}
			for i, want := range []bool{true, true, false} {
				clk.Advance(https.DefaultTicketRotation)
				syncKeys(t, a, b)
				if got := resumed(t, b, caches[i], v); got != want {
					t.Fatalf("after %d rotations, a session from the first key: DidResume = %v; want %v", i+1, got, want)
				}
			}
		})
	}
}

// TestSessionTicketKeysReloaded: a replica that reads the store every
// TicketReload takes up a rotation another replica made.
func TestSessionTicketKeysReloaded(t *testing.T) {
	store, cl := boltStore(t), newCluster(t)
	clk := cl.clock
	a := cl.replica(t, store, -1)
	b := cl.replica(t, store, 10*time.Millisecond)
	clk.Advance(https.DefaultTicketRotation)
	syncKeys(t, a) // a rotates (or b did, under the lock, already)
	for i := 0; ; i++ {
		cache := tls.NewLRUClientSessionCache(4)
		resumed(t, a, cache, tls.VersionTLS13) // a ticket from the newest key
		if resumed(t, b, cache, tls.VersionTLS13) {
			break
		}
		if i == 500 {
			t.Fatal("the second replica never took up the rotated keys")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSessionTicketKeysSealedInStore(t *testing.T) {
	store, cl := boltStore(t), newCluster(t)
	sealer := cl.sealer
	f := cl.replica(t, store, -1)
	b, err := store.GetBlob(context.Background(), https.TicketKeysBlob)
	if err != nil {
		t.Fatal(err)
	}
	if !data.IsSealedBlob(b.Value) {
		t.Fatal("the stored keys are not a sealed blob")
	}
	plain, err := data.OpenBlob(sealer.kr, https.TicketKeysBlob, b.Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 9+32 {
		t.Fatalf("plaintext is %d bytes; want one key", len(plain))
	}
	key := plain[9:]
	logs := f.logs.String()
	for _, enc := range []string{string(key), hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
		if bytes.Contains(b.Value, []byte(enc)) || strings.Contains(logs, enc) {
			t.Fatal("a session ticket key is in the store or the logs in clear")
		}
	}
	if !strings.Contains(logs, "session ticket keys created") {
		t.Fatalf("logs: %s", logs)
	}
	// Under another key the sealed value does not open.
	if _, err := data.OpenBlob(sealer.kr, "tls/other", b.Value); err == nil {
		t.Fatal("sealed keys opened under another store key")
	}
}

func TestSessionTicketKeysNeedASealer(t *testing.T) {
	cert, key := httpstest.NewCA(t).Issue(t).Files(t, t.TempDir())
	_, err := https.New(https.Options{CertFile: cert, KeyFile: key, TicketKeys: boltStore(t)})
	if err == nil || !strings.Contains(err.Error(), "TicketSealer") {
		t.Fatalf("err = %v", err)
	}
}
