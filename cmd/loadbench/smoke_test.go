package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/plugintest"
)

// smokeTargets are the lines the benchmark smoke must produce: every kind
// of proxied request and the route rule.
var smokeTargets = []string{"arbor-anon", "arbor-auth", "arbor-worker", "arbor-rule"}

// TestBenchSmoke is a short `make loadbench` (issue 20, "keep it from
// drifting back"): it builds arbor and loadbench, as `make loadbench`
// does, into a temporary directory, runs every target (upstream, bare,
// arbor-anon, arbor-auth, arbor-worker, arbor-rule) in 2 rounds of 1 s
// with a fresh data dir and fresh secrets, and logs the verdict lines.
// Then it runs `loadbench -ab` (make loadbench-ab) with the same arbor as
// A and B for 2 rounds of 1 s and wants its summary line, every figure
// positive and finite (checkABSummary). With git installed it then runs
// `loadbench -git` (issue 22) on a 4 MiB repository for one paired round,
// and wants its verdict line.
//
// It fails only on a broken run, which loadbench reports by its exit
// status: a child that exits, wrk failing or reporting a non-2xx answer or
// a socket error, a measurement without a request, sign-in or worker
// registration failing, a request with a session or a worker's headers
// that reaches the upstream without the user id header, an anonymous one
// that reaches it with one (counted at the upstream once settled), or the
// route rule's checks (the groups header, the refusals); and on a verdict
// line that is missing or unreadable. Never on a ratio: two rounds of one
// second on a busy machine say nothing about speed, and the lines are in
// the log for a reader, not judged.
//
// It needs wrk (the Debian package; .ci/run installs it): without it the
// test skips, and fails when CI is set.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the benchmark smoke builds two binaries and runs wrk for about 30 s")
	}
	wrk := findWrk(t)
	dir := t.TempDir()
	arborBin, benchBin := filepath.Join(dir, "arbor"), filepath.Join(dir, "loadbench")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Without -race: the race detector's slow-down would make the
	// figures meaningless, and the binaries are what `make loadbench`
	// builds. One go build for both, so that their shared packages
	// compile once, in parallel.
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "../arbor", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../arbor .: %v\n%s", err, out)
	}
	keys, err := exec.CommandContext(ctx, arborBin, "keys", "generate").Output()
	if err != nil {
		t.Fatalf("arbor keys generate: %v", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ARBOR_") })
	for _, line := range strings.Split(strings.TrimSpace(string(keys)), "\n") {
		if line = strings.TrimPrefix(strings.TrimSpace(line), "export "); strings.Contains(line, "=") {
			env = append(env, line)
		}
	}
	verdicts, logs := filepath.Join(dir, "verdicts"), filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, benchBin, "-arbor-cmd", "'"+arborBin+"' serve", "-wrk", wrk,
		"-rounds", "2", "-duration", "1s", "-verdicts", verdicts, "-log-dir", logs)
	cmd.Env = append(env, "ARBOR_DATA_DIR="+t.TempDir())
	// The plugins' compiled code from earlier test runs (the cache that
	// sdk/plugintest and the app tests share): start-up, not what is
	// measured, takes most of a cold run.
	if cache := plugintest.DefaultCacheDir(); cache != "" {
		cmd.Env = append(cmd.Env, envPluginCache+"="+cache)
	}
	started := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("loadbench ran for %v", time.Since(started).Round(time.Second))
	if err != nil {
		t.Fatalf("a broken benchmark run: %v\n%s%s", err, out, childLogs(logs))
	}
	b, err := os.ReadFile(verdicts)
	if err != nil {
		t.Fatalf("no verdict file: %v\n%s", err, out)
	}
	var seen []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		target, _, err := parseVerdict(sc.Text())
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		seen = append(seen, target)
		t.Log(sc.Text())
	}
	for _, want := range smokeTargets {
		if !slices.Contains(seen, want) {
			t.Errorf("no verdict line for %s; the run printed:\n%s", want, out)
		}
	}

	// The A/B comparison (-ab, make loadbench-ab), small: the same
	// binary as A and B, two rounds of one second; its summary line must
	// be there and read back, every figure positive and finite.
	cmd = exec.CommandContext(ctx, benchBin, "-ab", "-arbor-cmd", "'"+arborBin+"' serve", "-arbor-cmd-b", "'"+arborBin+"' serve",
		"-wrk", wrk, "-rounds", "2", "-duration", "1s", "-log-dir", logs)
	cmd.Env = append(env, "ARBOR_DATA_DIR="+t.TempDir())
	if cache := plugintest.DefaultCacheDir(); cache != "" {
		cmd.Env = append(cmd.Env, envPluginCache+"="+cache)
	}
	started = time.Now()
	out, err = cmd.CombinedOutput()
	t.Logf("loadbench -ab ran for %v", time.Since(started).Round(time.Second))
	if err != nil {
		t.Fatalf("a broken -ab run: %v\n%s%s", err, out, childLogs(logs))
	}
	checkABSummary(t, out)

	// The Git clone benchmark (-git, issue 22), small: a 4 MiB
	// repository, one paired round, with the same binaries.
	if _, err := exec.LookPath("git"); err != nil {
		t.Logf("no git: the -git smoke is skipped (%v)", err)
		return
	}
	gitVerdicts := filepath.Join(dir, "verdicts-git")
	cmd = exec.CommandContext(ctx, benchBin, "-arbor-cmd", "'"+arborBin+"' serve", "-git", "-git-mib", "4", "-rounds", "1",
		"-verdicts", gitVerdicts, "-log-dir", logs)
	cmd.Env = append(env, "ARBOR_DATA_DIR="+t.TempDir())
	if cache := plugintest.DefaultCacheDir(); cache != "" {
		cmd.Env = append(cmd.Env, envPluginCache+"="+cache)
	}
	started = time.Now()
	out, err = cmd.CombinedOutput()
	t.Logf("loadbench -git ran for %v", time.Since(started).Round(time.Second))
	if err != nil {
		t.Fatalf("a broken -git run: %v\n%s%s", err, out, childLogs(logs))
	}
	if !bytes.Contains(out, []byte("arbor RSS growth during a clone")) {
		t.Errorf("the -git run printed no RSS growth:\n%s", out)
	}
	b, err = os.ReadFile(gitVerdicts)
	if err != nil {
		t.Fatalf("no -git verdict file: %v\n%s", err, out)
	}
	if target, _, err := parseVerdict(strings.TrimSpace(string(b))); err != nil || target != "git-clone-arbor" {
		t.Errorf("-git verdict %q: target %q, %v", b, target, err)
	}
	t.Log(strings.TrimSpace(string(b)))
}

// checkABSummary wants one summary line in the output of `loadbench
// -ab -rounds 2` that reads back, over 2 rounds, with every figure
// positive and finite; never a range: two rounds of one second on a busy
// machine say nothing about speed.
func checkABSummary(t *testing.T, out []byte) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "ab: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("the -ab run printed %d summary lines, want 1:\n%s", len(lines), out)
	}
	t.Log(lines[0])
	s, err := parseABSummary(lines[0])
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if s.ba.cpu.n != 2 {
		t.Errorf("the summary counts %d rounds, want 2: %s", s.ba.cpu.n, lines[0])
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"B/A cpu/req", s.ba.cpu.med}, {"B/A cpu/req min", s.ba.cpu.lo}, {"B/A cpu/req max", s.ba.cpu.hi},
		{"B/A req/s", s.ba.rps.med}, {"B/A req/s min", s.ba.rps.lo}, {"B/A req/s max", s.ba.rps.hi},
		{"A/bare cpu/req", s.aBare.cpu.med}, {"A/bare req/s", s.aBare.rps.med},
		{"B/bare cpu/req", s.bBare.cpu.med}, {"B/bare req/s", s.bBare.rps.med},
	} {
		if !usable(f.v) {
			t.Errorf("%s is %v, want a positive finite ratio: %s", f.name, f.v, lines[0])
		}
	}
}

// findWrk returns wrk's path, or skips (no CI) / fails (CI) without it.
func findWrk(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wrk"); err == nil {
		return p
	}
	msg := "no wrk found (install the Debian package: apt-get install wrk)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so the benchmark smoke must not be skipped")
	}
	t.Skip(msg)
	return ""
}

// childLogs is the end of each child's log, for a failure message.
func childLogs(dir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		b.WriteString("\n--- " + filepath.Base(f) + " (end) ---\n")
		b.Write(data)
	}
	return b.String()
}
