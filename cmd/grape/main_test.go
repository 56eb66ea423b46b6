package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/vintner/arbor/sdk/client/clienttest"
)

var grapeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grape-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	grapeBin = filepath.Join(dir, "grape")
	build := exec.Command("go", "build", "-o", grapeBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building grape:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a clean environment: a private config home, no display (so no
// browser is started), and GRAPE_SERVER only when given.
func env(t *testing.T, server string) []string {
	home := t.TempDir()
	e := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "PATH=" + os.Getenv("PATH")}
	if server != "" {
		e = append(e, "GRAPE_SERVER="+server)
	}
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func grape(t *testing.T, environ []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, grapeBin, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic") {
		t.Errorf("grape %v printed a stack trace:\n%s", args, errb.String())
	}
	return result{code, out.String(), errb.String()}
}

// login runs `grape login` with stdin a pipe: it waits for the printed
// URL, approves the request on the fake as the user would in the browser,
// then types the given codes ("$" is the right one).
func login(t *testing.T, fake *clienttest.Server, environ []string, codes []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, grapeBin, append([]string{"login"}, args...)...)
	cmd.Env = environ
	stdin, _ := cmd.StdinPipe()
	stderr, _ := cmd.StderrPipe()
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	sc := bufio.NewScanner(stderr)
	deviceCode := ""
	for deviceCode == "" && sc.Scan() {
		line := sc.Text()
		errb.WriteString(line + "\n")
		if i := strings.Index(line, "http://"); i >= 0 {
			u, err := url.Parse(strings.TrimSpace(line[i:]))
			if err == nil && u.Path == "/cli/login" {
				deviceCode = u.Query().Get("device_code")
			}
		}
	}
	if deviceCode == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no login URL printed:\n%s", errb.String())
	}
	code, err := fake.Approve(deviceCode)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if c == "$" {
			c = strings.ToLower(code[:3]) + "-" + code[3:]
		} else if c == "!" {
			c = "AAAAAA"
			if code == c {
				c = "BBBBBB"
			}
		}
		io.WriteString(stdin, c+"\n")
	}
	stdin.Close()
	rest, _ := io.ReadAll(stderr)
	errb.Write(rest)
	err = cmd.Wait()
	rc := 0
	if ee, ok := err.(*exec.ExitError); ok {
		rc = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{rc, out.String(), errb.String()}
}

func TestLoginStatusTokenLogout(t *testing.T) {
	fake := clienttest.NewForTest(t)
	e := env(t, fake.URL) // the server comes from GRAPE_SERVER
	file := filepath.Join(e[1][len("XDG_CONFIG_HOME="):], "grape", "auth.json")

	r := login(t, fake, e, []string{"!", "$"}, "--no-browser")
	if r.code != 0 {
		t.Fatalf("login exited %d:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "attempts left") || !strings.Contains(r.stderr, "Logged in to "+fake.URL+" as ada") {
		t.Errorf("login output:\n%s", r.stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no token file at the default path: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o", fi.Mode().Perm())
	}

	r = grape(t, e, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, fake.URL) || !strings.Contains(r.stdout, "ada <ada@example.com> (usr_fake1)") || !strings.Contains(r.stdout, "valid until") {
		t.Errorf("status exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = grape(t, e, "", "token")
	tok := strings.TrimSuffix(r.stdout, "\n")
	if r.code != 0 || strings.ContainsAny(tok, " \n") || !fake.AccessTokenValid(tok) {
		t.Errorf("token exited %d, printed %q (stderr %q)", r.code, r.stdout, r.stderr)
	}

	r = grape(t, e, "", "logout")
	if r.code != 0 {
		t.Errorf("logout exited %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("token file still there after logout: %v", err)
	}
	if fake.Logouts() != 1 {
		t.Errorf("%d logouts on the server", fake.Logouts())
	}

	r = grape(t, e, "", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("status after logout: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = grape(t, e, "", "token")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "grape login") {
		t.Errorf("token after logout: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestLoginWithServerFlagAndConfigFile(t *testing.T) {
	fake := clienttest.NewForTest(t)
	e := env(t, "")
	file := filepath.Join(t.TempDir(), "sub", "login.json")
	r := login(t, fake, e, []string{"$"}, "--server", fake.URL, "--config-file", file, "--no-browser")
	if r.code != 0 {
		t.Fatalf("login exited %d:\n%s", r.code, r.stderr)
	}
	r = grape(t, e, "", "status", "--config-file", file)
	if r.code != 0 || !strings.Contains(r.stdout, fake.URL) {
		t.Errorf("status: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// A readable file is refused with the chmod to run.
	os.Chmod(file, 0o644)
	r = grape(t, e, "", "token", "--config-file", file)
	if r.code != 1 || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("token with a 0644 file: %d %q", r.code, r.stderr)
	}
}

func TestLoginUsageAndEndOfInput(t *testing.T) {
	e := env(t, "")
	if r := grape(t, e, "", "login"); r.code != 2 || !strings.Contains(r.stderr, "--server") {
		t.Errorf("login without a server: %d %q", r.code, r.stderr)
	}
	fake := clienttest.NewForTest(t)
	r := grape(t, env(t, fake.URL), "", "login", "--no-browser")
	if r.code != 1 || !strings.Contains(r.stderr, "no code") {
		t.Errorf("login with empty stdin: %d %q", r.code, r.stderr)
	}
}

func TestCodeModel(t *testing.T) {
	m := tea.Model(newCodeModel(""))
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("k7q")})
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("-X2M"), Paste: true})
	v := m.View()
	if strings.Contains(v, "k7q") || strings.Contains(v, "X2M") || !strings.Contains(v, "•••••••") {
		t.Errorf("view shows the code or not its length:\n%s", v)
	}
	m, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	cm := m.(codeModel)
	if !cm.submitted || cm.input.Value() != "k7q-X2M" || cmd == nil {
		t.Errorf("after Enter: submitted %v, value %q", cm.submitted, cm.input.Value())
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("Enter does not quit")
	}
	for _, k := range []tea.KeyType{tea.KeyEsc, tea.KeyCtrlC} {
		m, cmd := tea.Model(newCodeModel("")).Update(tea.KeyMsg{Type: k})
		if !m.(codeModel).cancelled || cmd == nil {
			t.Errorf("%v does not cancel", k)
		}
	}
}
