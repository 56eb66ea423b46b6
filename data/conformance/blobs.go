package conformance

import (
	"bytes"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
)

// Blob keys as certmagic writes them, and a few that sort around them.
const (
	blobCert    = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"
	blobKey     = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.key"
	blobAccount = "acme/acme-v02.api.letsencrypt.org-directory/users/ops@example.com/ops.key"
)

// blobValue is a value with every byte value in it, so that a backend that
// treats values as text is caught.
func blobValue(n int, seed byte) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i) + seed
	}
	return v
}

// putBlob stores value under key and fails the test if it cannot.
func (e *env) putBlob(key string, value []byte) {
	e.t.Helper()
	e.ok(e.s.PutBlob(e.ctx, key, value), "PutBlob "+key)
}

// blobIs fails the test unless key holds want, written at modified.
func (e *env) blobIs(key string, want []byte, modified time.Time) {
	e.t.Helper()
	b, err := e.s.GetBlob(e.ctx, key)
	e.returned(b, err, data.Blob{Key: key, Value: want, Modified: modified}, "GetBlob "+key)
}

func blobKeys(l []data.BlobInfo) []string {
	return ids(l, func(i data.BlobInfo) string { return i.Key })
}

var blobTests = []subtest{
	{"PutGet", func(e *env) {
		v := blobValue(300, 0)
		e.putBlob(blobCert, v)
		e.blobIs(blobCert, v, e.clock.Now())
		// The store keeps its own copy: changing the caller's slice
		// afterwards changes nothing stored.
		v[0] ^= 0xff
		e.blobIs(blobCert, blobValue(300, 0), e.clock.Now())
	}},
	{"Overwrite", func(e *env) {
		first := e.clock.Now()
		e.putBlob(blobCert, blobValue(10, 1))
		e.clock.Advance(time.Minute)
		e.putBlob(blobCert, blobValue(20, 2))
		e.blobIs(blobCert, blobValue(20, 2), first.Add(time.Minute))
		l, err := e.s.ListBlobs(e.ctx, "")
		e.returned(l, err, []data.BlobInfo{{Key: blobCert, Size: 20, Modified: first.Add(time.Minute)}}, "ListBlobs after the overwrite")
	}},
	{"EmptyValue", func(e *env) {
		e.putBlob("empty", nil)
		e.putBlob("also-empty", []byte{})
		for _, k := range []string{"empty", "also-empty"} {
			b, err := e.s.GetBlob(e.ctx, k)
			e.ok(err, "GetBlob "+k)
			if len(b.Value) != 0 {
				e.t.Fatalf("GetBlob %s: %d bytes, want none", k, len(b.Value))
			}
		}
		l, err := e.s.ListBlobs(e.ctx, "")
		e.ok(err, "ListBlobs")
		for _, i := range l {
			if i.Size != 0 {
				e.t.Fatalf("ListBlobs: %s has size %d, want 0", i.Key, i.Size)
			}
		}
		e.orderIs(blobKeys(l), []string{"also-empty", "empty"}, "ListBlobs")
	}},
	{"Delete", func(e *env) {
		e.putBlob(blobCert, blobValue(5, 0))
		e.putBlob(blobKey, blobValue(6, 0))
		e.ok(e.s.DeleteBlob(e.ctx, blobCert), "DeleteBlob")
		_, err := e.s.GetBlob(e.ctx, blobCert)
		e.is(err, data.ErrNotFound, "GetBlob after DeleteBlob")
		e.is(e.s.DeleteBlob(e.ctx, blobCert), data.ErrNotFound, "second DeleteBlob")
		e.blobIs(blobKey, blobValue(6, 0), e.clock.Now())
		// A deleted key can be written again.
		e.putBlob(blobCert, blobValue(7, 0))
		e.blobIs(blobCert, blobValue(7, 0), e.clock.Now())
	}},
	{"NotFound", func(e *env) {
		e.putBlob(blobCert, blobValue(5, 0))
		for _, k := range []string{blobKey, "certificates", blobCert + "x"} {
			_, err := e.s.GetBlob(e.ctx, k)
			e.is(err, data.ErrNotFound, "GetBlob "+k)
			_, err = e.s.UpdateBlob(e.ctx, k, func(b data.Blob) ([]byte, error) { return b.Value, nil })
			e.is(err, data.ErrNotFound, "UpdateBlob "+k)
			e.is(e.s.DeleteBlob(e.ctx, k), data.ErrNotFound, "DeleteBlob "+k)
		}
	}},
	{"ListPrefixes", func(e *env) {
		keys := []string{
			"certificates/ca/b.example/b.example.key",
			blobAccount,
			"certificatesX",
			"certificates/cb/c.example/c.example.crt",
			"certificates/ca/bb.example/bb.example.crt",
			"certificates/ca/b.example/b.example.crt",
			"Z-upper-sorts-first",
		}
		for i, k := range keys {
			e.putBlob(k, blobValue(i+1, byte(i)))
			e.clock.Advance(time.Second)
		}
		l, err := e.s.ListBlobs(e.ctx, "")
		e.ok(err, "ListBlobs all")
		e.orderIs(blobKeys(l), []string{
			"Z-upper-sorts-first",
			blobAccount,
			"certificates/ca/b.example/b.example.crt",
			"certificates/ca/b.example/b.example.key",
			"certificates/ca/bb.example/bb.example.crt",
			"certificates/cb/c.example/c.example.crt",
			"certificatesX",
		}, "ListBlobs all")
		for _, info := range l {
			i := -1
			for j, k := range keys {
				if k == info.Key {
					i = j
				}
			}
			want := data.BlobInfo{Key: info.Key, Size: i + 1, Modified: Start.Add(time.Duration(i) * time.Second)}
			e.equal(info, want, "ListBlobs entry "+info.Key)
		}
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"certificates/", []string{
				"certificates/ca/b.example/b.example.crt",
				"certificates/ca/b.example/b.example.key",
				"certificates/ca/bb.example/bb.example.crt",
				"certificates/cb/c.example/c.example.crt",
			}},
			{"certificates/ca/b.example/", []string{
				"certificates/ca/b.example/b.example.crt",
				"certificates/ca/b.example/b.example.key",
			}},
			{"certificates/ca/b", []string{
				"certificates/ca/b.example/b.example.crt",
				"certificates/ca/b.example/b.example.key",
				"certificates/ca/bb.example/bb.example.crt",
			}},
			{"certificates/ca/b.example/b.example.key", []string{"certificates/ca/b.example/b.example.key"}},
			{"acme/", []string{blobAccount}},
			{"nothing/", nil},
			{"z", nil},
		} {
			l, err := e.s.ListBlobs(e.ctx, c.prefix)
			e.ok(err, "ListBlobs "+c.prefix)
			e.orderIs(blobKeys(l), c.want, "ListBlobs "+c.prefix)
		}
	}},
	{"Update", func(e *env) {
		first := e.clock.Now()
		e.putBlob(blobKey, []byte("old"))
		e.clock.Advance(time.Hour)
		got, err := e.s.UpdateBlob(e.ctx, blobKey, func(b data.Blob) ([]byte, error) {
			if b.Key != blobKey || string(b.Value) != "old" || !b.Modified.Equal(first) {
				e.t.Errorf("UpdateBlob's function got %q %q %v, want the stored blob", b.Key, b.Value, b.Modified)
			}
			return append(bytes.Clone(b.Value), "+new"...), nil
		})
		want := data.Blob{Key: blobKey, Value: []byte("old+new"), Modified: first.Add(time.Hour)}
		e.returned(got, err, want, "UpdateBlob")
		e.blobIs(blobKey, want.Value, want.Modified)

		// A refusing function or a value too large writes nothing.
		e.clock.Advance(time.Hour)
		_, err = e.s.UpdateBlob(e.ctx, blobKey, func(b data.Blob) ([]byte, error) { return []byte("x"), errBoom })
		e.is(err, errBoom, "UpdateBlob with a refusing function")
		_, err = e.s.UpdateBlob(e.ctx, blobKey, func(b data.Blob) ([]byte, error) { return make([]byte, data.MaxBlobSize+1), nil })
		e.is(err, data.ErrInvalid, "UpdateBlob to a value too large")
		e.blobIs(blobKey, want.Value, want.Modified)
	}},
	{"ConcurrentUpdates", func(e *env) {
		// Each update appends one byte; a lost update would lose one.
		const n = 16
		e.putBlob("counter", nil)
		errs := make(chan error, n)
		concurrently(n, func(i int) {
			_, err := e.s.UpdateBlob(e.ctx, "counter", func(b data.Blob) ([]byte, error) {
				return append(bytes.Clone(b.Value), byte('a'+i)), nil
			})
			errs <- err
		})
		close(errs)
		for err := range errs {
			e.ok(err, "concurrent UpdateBlob")
		}
		b, err := e.s.GetBlob(e.ctx, "counter")
		e.ok(err, "GetBlob counter")
		if len(b.Value) != n {
			e.t.Fatalf("after %d concurrent appends the value is %q (%d bytes)", n, b.Value, len(b.Value))
		}
	}},
	{"Sizes", func(e *env) {
		big := blobValue(data.MaxBlobSize, 3)
		e.putBlob("big", big)
		e.blobIs("big", big, e.clock.Now())
		l, err := e.s.ListBlobs(e.ctx, "big")
		e.returned(l, err, []data.BlobInfo{{Key: "big", Size: data.MaxBlobSize, Modified: e.clock.Now()}}, "ListBlobs big")
		e.is(e.s.PutBlob(e.ctx, "too-big", make([]byte, data.MaxBlobSize+1)), data.ErrInvalid, "PutBlob of MaxBlobSize+1 bytes")
		_, err = e.s.GetBlob(e.ctx, "too-big")
		e.is(err, data.ErrNotFound, "GetBlob of the refused value")
	}},
	{"Keys", func(e *env) {
		// Valid edge cases are stored under exactly their key.
		valid := []string{
			strings.Repeat("k", data.MaxBlobKeyLen),
			"a b", "/leading/slash", "trailing/", "one.dot/./x", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',",
		}
		for i, k := range valid {
			e.putBlob(k, []byte{byte(i)})
		}
		for i, k := range valid {
			e.blobIs(k, []byte{byte(i)}, e.clock.Now())
		}
		invalid := []string{
			"", "..", "a/../b", "a..", strings.Repeat("k", data.MaxBlobKeyLen+1),
			"nul\x00", "newline\n", "tab\t", "del\x7f", "é", "\xff",
		}
		for _, k := range invalid {
			what := " " + strings.ToValidUTF8(k, "?")
			e.is(e.s.PutBlob(e.ctx, k, []byte("v")), data.ErrInvalid, "PutBlob"+what)
			_, err := e.s.GetBlob(e.ctx, k)
			e.is(err, data.ErrInvalid, "GetBlob"+what)
			_, err = e.s.UpdateBlob(e.ctx, k, func(b data.Blob) ([]byte, error) { return b.Value, nil })
			e.is(err, data.ErrInvalid, "UpdateBlob"+what)
			e.is(e.s.DeleteBlob(e.ctx, k), data.ErrInvalid, "DeleteBlob"+what)
			if k != "" {
				_, err = e.s.ListBlobs(e.ctx, k)
				e.is(err, data.ErrInvalid, "ListBlobs"+what)
			}
		}
		l, err := e.s.ListBlobs(e.ctx, "")
		e.ok(err, "ListBlobs")
		if len(l) != len(valid) {
			e.t.Fatalf("ListBlobs: %d blobs, want the %d valid ones", len(l), len(valid))
		}
	}},
	{"ModifiedInUTC", func(e *env) {
		e.clock.Set(Start.In(time.FixedZone("IST", 5*3600+30*60)))
		e.putBlob(blobCert, []byte("v"))
		b, err := e.s.GetBlob(e.ctx, blobCert)
		e.ok(err, "GetBlob")
		e.checkUTC([]time.Time{b.Modified}, []time.Time{Start}, "GetBlob's Modified")
		l, err := e.s.ListBlobs(e.ctx, "")
		e.ok(err, "ListBlobs")
		e.checkUTC([]time.Time{l[0].Modified}, []time.Time{Start}, "ListBlobs' Modified")
	}},
	{"NotOwned", func(e *env) {
		// Blobs belong to no user: deleting users and collecting expired
		// records leave them alone.
		e.user("u1")
		e.putBlob(blobCert, []byte("v"))
		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser")
		e.clock.Advance(100 * 365 * 24 * time.Hour)
		_, err := e.s.CollectExpired(e.ctx, e.clock.Now())
		e.ok(err, "CollectExpired")
		e.blobIs(blobCert, []byte("v"), Start)
	}},
	{"Closed", func(e *env) {
		e.putBlob(blobCert, []byte("v"))
		e.ok(e.s.Close(), "Close")
		e.is(e.s.PutBlob(e.ctx, blobCert, []byte("w")), data.ErrClosed, "PutBlob after Close")
		_, err := e.s.GetBlob(e.ctx, blobCert)
		e.is(err, data.ErrClosed, "GetBlob after Close")
		_, err = e.s.UpdateBlob(e.ctx, blobCert, func(b data.Blob) ([]byte, error) { return b.Value, nil })
		e.is(err, data.ErrClosed, "UpdateBlob after Close")
		e.is(e.s.DeleteBlob(e.ctx, blobCert), data.ErrClosed, "DeleteBlob after Close")
		_, err = e.s.ListBlobs(e.ctx, "")
		e.is(err, data.ErrClosed, "ListBlobs after Close")
	}},
}
