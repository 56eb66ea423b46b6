package boltdb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// The crash test runs this test binary again as a child that writes to a
// store until the parent kills it. These variables switch a process into
// the child.
const (
	envCrashChild = "ARBOR_BOLTDB_CRASH_CHILD" // the store file
	envCrashRound = "ARBOR_BOLTDB_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envCrashChild); path != "" {
		crashChild(path, os.Getenv(envCrashRound))
		return // not reached: the parent kills the child
	}
	os.Exit(m.Run())
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	crashUser    = "crash-user"
	crashWriters = 4
)

// crashChild opens the store and writes until it is killed: each writer
// goroutine creates sessions, increments its own connection's counter and
// appends audit events in turn. A line goes to stdout only after the call
// that wrote it returned nil, in one write(2), so every line the parent
// reads names a write the store acknowledged:
//
//	S <session id>
//	C <provider> <version> <counter>
//	A <seq> <target>
func crashChild(path, round string) {
	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stdout.WriteString(line); err != nil {
			os.Exit(4)
		}
	}
	ack("READY")
	ctx := context.Background()
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "crash child: %s: %v\n", what, err)
		os.Exit(5)
	}
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			provider := "p" + strconv.Itoa(g)
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				switch i % 3 {
				case 0:
					if err := s.CreateSession(ctx, crashSession(id)); err != nil {
						fail("CreateSession", err)
					}
					ack("S %s", id)
				case 1:
					c, err := s.UpdateConnection(ctx, crashUser, provider, func(c data.Connection) (data.Connection, error) {
						n, err := strconv.ParseUint(c.AccountID, 10, 64)
						c.AccountID = strconv.FormatUint(n+1, 10)
						return c, err
					})
					if err != nil {
						fail("UpdateConnection", err)
					}
					ack("C %s %d %s", provider, c.Version, c.AccountID)
				case 2:
					ev, err := s.AppendAudit(ctx, data.AuditEvent{Action: "crash.test", Target: id})
					if err != nil {
						fail("AppendAudit", err)
					}
					ack("A %d %s", ev.Seq, id)
				}
			}
		})
	}
	wg.Wait()
}

func crashSession(id string) data.Session {
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return data.Session{
		ID: id, UserID: crashUser, CreatedAt: created, LastSeenAt: created,
		ExpiresAt: created.Add(100 * 365 * 24 * time.Hour), UserAgent: "ua-" + id, IP: "198.51.100.1",
	}
}

// TestCrashKeepsAcknowledgedWrites kills a writing child with SIGKILL at
// random moments and checks, after each kill, that the file opens cleanly,
// passes bbolt's consistency check, and holds every write the child saw
// acknowledged.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	const rounds = 24
	path := filepath.Join(t.TempDir(), "arbor.db")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: crashUser}); err != nil {
		t.Fatal(err)
	}
	for g := range crashWriters {
		if err := s.CreateConnection(ctx, data.Connection{UserID: crashUser, Provider: "p" + strconv.Itoa(g), AccountID: "0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	sessions := map[string]bool{}
	versions := map[string]uint64{} // provider -> highest acknowledged version
	audits := map[uint64]string{}   // seq -> target
	start := time.Now()
	for round := range rounds {
		// One round in four kills the child early, likely while it opens
		// the file; the others after it is writing.
		early := round%4 == 3
		wait := time.Duration(rng.IntN(150)+10) * time.Millisecond
		if early {
			wait = time.Duration(rng.IntN(30)) * time.Millisecond
		}
		lines, stderr := runCrashChild(t, path, round, early, wait)
		for _, line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) == 1 && f[0] == "READY":
			case len(f) == 2 && f[0] == "S":
				sessions[f[1]] = true
			case len(f) == 4 && f[0] == "C":
				v, err := strconv.ParseUint(f[2], 10, 64)
				if err != nil {
					t.Fatalf("round %d: bad line %q", round, line)
				}
				versions[f[1]] = max(versions[f[1]], v)
			case len(f) == 3 && f[0] == "A":
				seq, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					t.Fatalf("round %d: bad line %q", round, line)
				}
				audits[seq] = f[2]
			default:
				t.Fatalf("round %d: child printed %q (stderr: %s)", round, line, stderr)
			}
		}
		verifyAfterCrash(t, path, round, sessions, versions, audits)
	}
	t.Logf("%d rounds in %s: %d sessions, %d audit events and connection versions %v acknowledged and found intact",
		rounds, time.Since(start).Round(time.Millisecond), len(sessions), len(audits), versions)
	if len(sessions) == 0 || len(audits) == 0 || len(versions) == 0 {
		t.Fatal("the child acknowledged no writes of some kind: the test checked nothing; is the child failing to start?")
	}
}

// runCrashChild starts the child, kills it after wait (counted from its
// READY line unless early), and returns the complete lines it printed.
func runCrashChild(t *testing.T, path string, round int, early bool, wait time.Duration) ([]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+path, envCrashRound+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "READY" && lines == nil {
				close(ready)
			}
			lines = append(lines, sc.Text())
		}
	}()
	if !early {
		select {
		case <-ready:
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the child did not open the store within 10s (stderr: %s)", round, stderr.String())
		}
	}
	time.Sleep(wait)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-done
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: the child ended by itself (%v) instead of being killed; stderr: %s", round, err, stderr.String())
	}
	return lines, stderr.String()
}

func verifyAfterCrash(t *testing.T, path string, round int, sessions map[string]bool, versions map[string]uint64, audits map[uint64]string) {
	t.Helper()
	s, err := Open(path, Options{Logger: quiet, OpenTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("round %d: the store does not open after SIGKILL: %v", round, err)
	}
	defer s.Close()
	if err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("round %d: bbolt consistency check after SIGKILL: %v", round, err)
	}
	ctx := context.Background()
	for id := range sessions {
		got, err := s.GetSession(ctx, id)
		if err != nil {
			t.Fatalf("round %d: acknowledged session %s: %v", round, id, err)
		}
		if want := crashSession(id); got != want {
			t.Fatalf("round %d: acknowledged session %s reads back as %+v, want %+v", round, id, got, want)
		}
	}
	for provider, v := range versions {
		c, err := s.GetConnection(ctx, crashUser, provider)
		if err != nil {
			t.Fatalf("round %d: connection %s: %v", round, provider, err)
		}
		// Later writes may have committed without being acknowledged, but
		// none may be lost, and Version and counter move together.
		if c.Version < v || c.AccountID != strconv.FormatUint(c.Version-1, 10) {
			t.Fatalf("round %d: connection %s has Version %d and counter %s; acknowledged Version %d, counter must be Version-1",
				round, provider, c.Version, c.AccountID, v)
		}
	}
	for seq, target := range audits {
		evs, err := s.ListAudit(ctx, data.AuditQuery{AfterSeq: seq - 1, Limit: 1})
		if err != nil {
			t.Fatalf("round %d: ListAudit: %v", round, err)
		}
		if len(evs) != 1 || evs[0].Seq != seq || evs[0].Target != target {
			t.Fatalf("round %d: acknowledged audit event %d (%s) reads back as %+v", round, seq, target, evs)
		}
	}
}
