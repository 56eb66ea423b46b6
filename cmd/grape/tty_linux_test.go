package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vintner/arbor/sdk/client/clienttest"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening the pty: %v", err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100})
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyOutput collects what the program writes to the terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *ptyOutput) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %v in the terminal output:\n%q", re, o.String())
	return nil
}

// startOnTTY runs `grape login` with stdin, stdout and stderr on a pty.
func startOnTTY(t *testing.T, fake *clienttest.Server) (*exec.Cmd, *os.File, *ptyOutput, context.CancelFunc) {
	master, slave := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, grapeBin, "login", "--no-browser")
	cmd.Env = append(env(t, fake.URL), "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	out := &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return cmd, master, out, cancel
}

var loginURLRE = regexp.MustCompile(`(http://127\.0\.0\.1:\d+/cli/login\?\S+)`)

func TestLoginOnTerminalMasksCodeAndSubmits(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cmd, master, out, cancel := startOnTTY(t, fake)
	defer cancel()
	m := out.waitFor(t, loginURLRE)
	u, _ := url.Parse(m[1])
	code, err := fake.Approve(u.Query().Get("device_code"))
	if err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, regexp.MustCompile(`Code: `))
	typed := strings.ToLower(code[:3]) + "-" + code[3:]
	master.WriteString(typed)
	out.waitFor(t, regexp.MustCompile(`•••••••`))
	master.WriteString("\r")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login: %v\n%q", err, out.String())
	}
	// The output may still be on its way through the pty.
	out.waitFor(t, regexp.MustCompile(`Logged in to `))
	if s := out.String(); strings.Contains(s, typed) || strings.Contains(s, code) {
		t.Errorf("the code appeared on the terminal:\n%q", s)
	}
}

func TestLoginOnTerminalCtrlCExits130(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cmd, master, out, cancel := startOnTTY(t, fake)
	defer cancel()
	out.waitFor(t, regexp.MustCompile(`Code: `))
	master.WriteString("AB")
	out.waitFor(t, regexp.MustCompile(`••`))
	master.Write([]byte{3}) // Ctrl-C
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130\n%q", err, out.String())
	}
	out.waitFor(t, regexp.MustCompile(`grape: login cancelled`))
	s := out.String()
	if strings.Contains(s, "goroutine") || strings.Contains(s, "panic") {
		t.Errorf("terminal output:\n%q", s)
	}
	if len(fake.Exchanges()) != 0 {
		t.Error("a code was sent after Ctrl-C")
	}
}
