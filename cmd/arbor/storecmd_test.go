package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd/etcdtest"
)

// runStoreCopy runs `arbor store copy args…` in this process (the embedded
// etcd it copies to runs here too) and returns what it printed.
func runStoreCopy(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"store", "copy"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// countLine matches the report's line for kind: copied, source and
// destination all n.
func countLine(kind, n string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(kind) + `\s+` + n + `\s+` + n + `\s+` + n + `\s*$`)
}

func TestStoreCopyBoltToEtcdAndBack(t *testing.T) {
	t.Setenv("ARBOR_ETCD_PASSWORD", "")
	t.Setenv("ARBOR_ETCD_PASSWORD_FILE", "")
	dir := t.TempDir()
	src := filepath.Join(dir, "a.db")
	kr := keyring(t, mustEntry(t))
	seedConnection(t, src, kr, "gho_copied")
	func() { // a session and two audit events besides
		st, err := boltdb.Open(src, boltdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx, now := context.Background(), time.Now()
		if err := st.CreateSession(ctx, data.Session{ID: "s1", UserID: "u1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"login", "connect"} {
			if _, err := st.AppendAudit(ctx, data.AuditEvent{Action: a, UserID: "u1"}); err != nil {
				t.Fatal(err)
			}
		}
	}()
	original := readConnection(t, src)

	cluster := etcdtest.Start(t)
	eps := "etcd:" + strings.Join(cluster.Endpoints(), ",")
	out, err := runStoreCopy(t, "--from", "bbolt:"+src, "--to", eps, "--etcd-root", "/moved/")
	if err != nil {
		t.Fatalf("bbolt -> etcd: %v\n%s", err, out)
	}
	t.Logf("arbor store copy printed:\n%s", out)
	for kind, n := range map[string]string{
		data.KindUsers: "1", data.KindConnections: "1", data.KindSessions: "1", data.KindAudit: "2",
		data.KindIdentities: "0", data.KindWorkers: "0", data.KindOAuthStates: "0", data.KindDeviceCodes: "0",
	} {
		if !countLine(kind, n).MatchString(out) {
			t.Errorf("no line %q with %s copied, source and destination in:\n%s", kind, n, out)
		}
	}
	if !strings.Contains(out, "verified: every record matches") {
		t.Errorf("no verification line in:\n%s", out)
	}

	// The same copy again: the destination is not empty any more.
	out, err = runStoreCopy(t, "--from", "bbolt:"+src, "--to", eps, "--etcd-root", "/moved/")
	if !errors.Is(err, data.ErrNotEmpty) || strings.Contains(out, "verified") {
		t.Errorf("copy into a non-empty etcd: %v\n%s", err, out)
	}

	back := filepath.Join(dir, "b.db")
	out, err = runStoreCopy(t, "--from", eps, "--etcd-root", "/moved/", "--to", "bbolt:"+back)
	if err != nil {
		t.Fatalf("etcd -> bbolt: %v\n%s", err, out)
	}
	if !countLine(data.KindConnections, "1").MatchString(out) || !strings.Contains(out, "verified: every record matches") {
		t.Errorf("etcd -> bbolt printed:\n%s", out)
	}
	c := readConnection(t, back)
	if !bytes.Equal(c.Sealed, original.Sealed) || c.Version != original.Version {
		t.Errorf("connection after the round trip: version %d, sealed equal %v; want version %d, equal bytes",
			c.Version, bytes.Equal(c.Sealed, original.Sealed), original.Version)
	}
	if tok, err := kr.Open(c.Sealed, data.ConnectionAAD("u1", "github")); err != nil || string(tok) != "gho_copied" {
		t.Errorf("opening the copied token: %q, %v", tok, err)
	}
	if st, err := os.Stat(back); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new store file: %v, %v; want mode 0600", st.Mode(), err)
	}
}

func TestStoreCopyRefusesHeldOrMissingFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.db")
	dst := filepath.Join(dir, "c.db")
	seedConnection(t, src, keyring(t, mustEntry(t)), "tok")

	held, err := boltdb.Open(src, boltdb.Options{}) // as `arbor serve` would
	if err != nil {
		t.Fatal(err)
	}
	out, err := runStoreCopy(t, "--from", "bbolt:"+src, "--to", "bbolt:"+dst)
	if err == nil || !strings.Contains(err.Error(), "is an arbor server running on it? stop it first") {
		t.Errorf("copy from a held file: %v\n%s", err, out)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused copy created %s: %v", dst, err)
	}
	held.Close()

	_, err = runStoreCopy(t, "--from", "bbolt:"+filepath.Join(dir, "missing.db"), "--to", "bbolt:"+dst)
	if err == nil || !strings.Contains(err.Error(), "no store file") {
		t.Errorf("copy from a missing file: %v", err)
	}
	_, err = runStoreCopy(t, "--from", "bolt:"+src, "--to", "bbolt:"+dst)
	if err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("copy from an unknown kind: %v", err)
	}
}
