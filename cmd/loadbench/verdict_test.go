package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPairedMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name      string
		a, b      []float64
		want      float64
		wantPairs int
	}{
		{"odd", []float64{90, 80, 100}, []float64{100, 100, 100}, 0.9, 3},
		{"even: mean of the middle two", []float64{90, 80, 100, 70}, []float64{100, 100, 100, 100}, 0.85, 4},
		// A slow spell in round 2 slows both targets alike: its ratio
		// is like the others, where the ratio of medians would not be.
		{"pairs by round, not by rank", []float64{100, 50, 110}, []float64{110, 55, 121}, 100.0 / 110, 3},
		{"a base that did not move is left out", []float64{10, 12, 11}, []float64{0, 10, 10}, 1.15, 2},
		{"a missing figure is left out", []float64{nan, 9}, []float64{10, 10}, 0.9, 1},
		{"uneven lengths: the common rounds", []float64{9, 8, 7}, []float64{10}, 0.9, 1},
		{"no pair", []float64{1}, []float64{0}, nan, 0},
		{"nothing", nil, nil, nan, 0},
	} {
		got, n := pairedMedian(tc.a, tc.b)
		if n != tc.wantPairs || !(math.Abs(got-tc.want) < 1e-9 || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%s: pairedMedian = %v over %d pairs, want %v over %d", tc.name, got, n, tc.want, tc.wantPairs)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		c    check
		met  bool
		text string
	}{
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.91, 20}, true, "throughput 0.91x bare (>= 0.90x) MET"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.9, 20}, true, "throughput 0.90x bare (>= 0.90x) MET"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.8999, 20}, false, "throughput 0.8999x bare (>= 0.90x) MISSED"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.897, 20}, false, "throughput 0.897x bare (>= 0.90x) MISSED"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.9031, 20}, true, "throughput 0.903x bare (>= 0.90x) MET"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, 0.89999999, 20}, false, "throughput 0.9000x bare (>= 0.90x) MISSED"},
		{check{checkSpec{mCPU, "bare", "<=", 1.25}, 1.2549, 20}, false, "CPU/req 1.255x bare (<= 1.25x) MISSED"},
		{check{checkSpec{mCPU, "bare", "<=", 1.25}, 1.22, 20}, true, "CPU/req 1.22x bare (<= 1.25x) MET"},
		{check{checkSpec{mCPU, "bare", "<=", 1.25}, 1.45, 20}, false, "CPU/req 1.45x bare (<= 1.25x) MISSED"},
		{check{checkSpec{mP99, "quiet", "<", 3}, 3, 10}, false, "p99 3.00x quiet (< 3.00x) MISSED"},
		{check{checkSpec{mP99, "quiet", "<", 3}, 2.5, 10}, true, "p99 2.50x quiet (< 3.00x) MET"},
		{check{checkSpec{mThroughput, "arbor-auth-1r@etcd", "", 0}, 0.97, 12}, true, "throughput 0.97x arbor-auth-1r@etcd (no target) REPORTED"},
		{check{checkSpec{mThroughput, "bare", ">=", 0.9}, math.NaN(), 0}, false, "throughput - bare (>= 0.90x) UNMEASURED"},
	} {
		if got := tc.c.String(); got != tc.text {
			t.Errorf("String() = %q, want %q", got, tc.text)
		}
		if got := tc.c.met(); got != tc.met {
			t.Errorf("%s: met = %v, want %v", tc.text, got, tc.met)
		}
	}
}

// figuresOf makes round figures from per-target throughput and CPU lists.
func figuresOf(rows map[string][2][]float64) roundFigures {
	f := roundFigures{}
	for name, r := range rows {
		for i := range r[0] {
			f.add(name, mThroughput, r[0][i])
			f.add(name, mCPU, r[1][i])
		}
	}
	return f
}

func TestJudge(t *testing.T) {
	full := figuresOf(map[string][2][]float64{
		"upstream":     {{130, 140, 135}, {7, 7, 7}},
		"bare":         {{100, 100, 100}, {10, 10, 10}},
		"arbor-anon":   {{92, 91, 80}, {12, 12.2, 13}},
		"arbor-auth":   {{85, 80, 79}, {13, 13, 14}},
		"arbor-worker": {{75, 70, 60}, {14, 14, 15}},
		"arbor-rule":   {{84, 79, 70}, {13, 13, 14}},
	})
	for _, tc := range []struct {
		name  string
		specs []verdictSpec
		f     roundFigures
		label string
		want  []string
	}{
		{"make loadbench", plainSpecs, full, "", []string{
			"verdict arbor-anon         throughput 0.91x bare (>= 0.90x) MET; CPU/req 1.22x bare (<= 1.25x) MET",
			"verdict arbor-auth         throughput 0.92x arbor-anon (>= 0.90x) MET; throughput 0.80x bare (>= 0.80x) MET",
			"verdict arbor-worker       throughput 0.77x arbor-anon (>= 0.90x) MISSED; throughput 0.70x bare (>= 0.80x) MISSED",
			"verdict arbor-rule         throughput 0.99x arbor-auth (>= 0.95x) MET",
		}},
		{"etcd, labelled", plainSpecs[:1], full, "@etcd", []string{
			"verdict arbor-anon@etcd    throughput 0.91x bare@etcd (>= 0.90x) MET; CPU/req 1.22x bare@etcd (<= 1.25x) MET",
		}},
		// -only arbor-auth,arbor-rule: only the route rule's line has
		// both its target and its base.
		{"-only a pair", plainSpecs, roundFigures{"arbor-auth": full["arbor-auth"], "arbor-rule": full["arbor-rule"]}, "", []string{
			"verdict arbor-rule         throughput 0.99x arbor-auth (>= 0.95x) MET",
		}},
		// -only arbor-auth,bare: the check against arbor-anon is left out.
		{"-only without its first base", plainSpecs, roundFigures{"arbor-auth": full["arbor-auth"], "bare": full["bare"]}, "", []string{
			"verdict arbor-auth         throughput 0.80x bare (>= 0.80x) MET",
		}},
		{"nothing measured", plainSpecs, roundFigures{}, "", nil},
		{"tls", tlsSpecs[:1], figuresOf(map[string][2][]float64{
			"bare-tls": {{50, 60}, {20, 20}}, "arbor-anon-tls": {{45, 57}, {24, 26}},
		}), "", []string{
			"verdict arbor-anon-tls     throughput 0.93x bare-tls (>= 0.90x) MET; CPU/req 1.25x bare-tls (<= 1.25x) MET",
		}},
	} {
		var got []string
		for _, l := range judge(tc.specs, tc.f, tc.label) {
			got = append(got, l.String())
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// Every line that String makes reads back; anything else is refused.
func TestParseVerdict(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		line   string
		target string
		checks []parsedCheck
		bad    bool
	}{
		{line: "verdict arbor-anon         throughput 0.91x bare (>= 0.90x) MET; CPU/req 1.22x bare (<= 1.25x) MET",
			target: "arbor-anon", checks: []parsedCheck{{mThroughput, "bare", "MET", 0.91}, {mCPU, "bare", "MET", 1.22}}},
		{line: "verdict arbor-auth-flood   throughput 0.40x quiet (>= 0.50x) MISSED; p99 1.20x quiet (< 3.00x) MET",
			target: "arbor-auth-flood", checks: []parsedCheck{{mThroughput, "quiet", "MISSED", 0.4}, {mP99, "quiet", "MET", 1.2}}},
		{line: "verdict arbor-auth-2r@etcd throughput 0.97x arbor-auth-1r@etcd (no target) REPORTED",
			target: "arbor-auth-2r@etcd", checks: []parsedCheck{{mThroughput, "arbor-auth-1r@etcd", "REPORTED", 0.97}}},
		{line: "verdict arbor-anon-tls     handshakes/s - caddy-tls (>= 0.90x) UNMEASURED",
			target: "arbor-anon-tls", checks: []parsedCheck{{mHandshakes, "caddy-tls", "UNMEASURED", nan}}},
		{line: "broken  loadbench-tls      wrk failed", bad: true},
		{line: "verdict arbor-anon", bad: true},
		{line: "verdict arbor-anon         throughput 0.91x bare (>= 0.90x) PASSED", bad: true},
		{line: "verdict arbor-anon         throughput 0.91x bare (>= 0.90x) MET;", bad: true},
	} {
		target, checks, err := parseVerdict(tc.line)
		if tc.bad {
			if err == nil {
				t.Errorf("parseVerdict(%q) accepted it: %s %v", tc.line, target, checks)
			}
			continue
		}
		if err != nil || target != tc.target || len(checks) != len(tc.checks) {
			t.Errorf("parseVerdict(%q) = %q, %v, %v; want %q, %v", tc.line, target, checks, err, tc.target, tc.checks)
			continue
		}
		for i, c := range checks {
			w := tc.checks[i]
			if c.metric != w.metric || c.base != w.base || c.word != w.word ||
				!(c.ratio == w.ratio || math.IsNaN(c.ratio) && math.IsNaN(w.ratio)) {
				t.Errorf("parseVerdict(%q) check %d = %+v, want %+v", tc.line, i, c, w)
			}
		}
	}
}

func TestIdentityFailure(t *testing.T) {
	for _, tc := range []struct {
		identity    int
		n, requests int64
		bad         bool
	}{
		{1, 1000, 1000, false},
		{1, 1003, 1000, false}, // in flight when wrk stopped
		{1, 999, 1000, true},
		{0, 0, 1000, false},
		{0, 5, 1000, true}, // an anonymous request carried an identity
		{-1, 5, 1000, false},
	} {
		if got := identityFailure(tc.identity, tc.n, tc.requests); (got != "") != tc.bad {
			t.Errorf("identityFailure(%d, %d, %d) = %q, want a failure: %v", tc.identity, tc.n, tc.requests, got, tc.bad)
		}
	}
}

func TestParseWrkAndFailure(t *testing.T) {
	const head = "Running 1s test @ http://127.0.0.1:18931/\n  1 threads and 2 connections\n"
	for _, tc := range []struct {
		name      string
		text      string
		want      wrkResult
		parseFail bool
		broken    bool
	}{
		{name: "clean", text: head + "  923 requests in 1.10s, 468.71KB read\nRequests/sec:    837.92\nTransfer/sec:    425.51KB\n",
			want: wrkResult{requests: 923, seconds: 1.10, reqPerSec: 837.92}},
		{name: "non-2xx", text: head + "  923 requests in 1.10s, 468.71KB read\n  Non-2xx or 3xx responses: 923\nRequests/sec:    837.92\n",
			want: wrkResult{requests: 923, seconds: 1.10, reqPerSec: 837.92, errors: 923}, broken: true},
		{name: "socket errors", text: head + "  50 requests in 2.00m, 1KB read\n  Socket errors: connect 1, read 2, write 3, timeout 4\nRequests/sec:    0.42\n",
			want: wrkResult{requests: 50, seconds: 120, reqPerSec: 0.42, errors: 10}, broken: true},
		{name: "no request", text: head + "  0 requests in 1.00s, 0.00B read\nRequests/sec:      0.00\n",
			want: wrkResult{seconds: 1}, broken: true},
		{name: "milliseconds", text: "  7 requests in 900.00ms, 1KB read\nRequests/sec: 7.77\n",
			want: wrkResult{requests: 7, seconds: 0.9, reqPerSec: 7.77}},
		{name: "not wrk", text: "unable to connect to 127.0.0.1:1 Connection refused\n", parseFail: true},
	} {
		got, err := parseWrk(tc.text)
		if (err != nil) != tc.parseFail {
			t.Errorf("%s: parseWrk error %v, want one: %v", tc.name, err, tc.parseFail)
			continue
		}
		if tc.parseFail {
			continue
		}
		if got.requests != tc.want.requests || math.Abs(got.seconds-tc.want.seconds) > 1e-9 ||
			got.reqPerSec != tc.want.reqPerSec || got.errors != tc.want.errors {
			t.Errorf("%s: parseWrk = %+v, want %+v", tc.name, got, tc.want)
		}
		if f := wrkFailure(got); (f != "") != tc.broken {
			t.Errorf("%s: wrkFailure = %q, want broken: %v", tc.name, f, tc.broken)
		}
	}
}

// The -verdicts file collects the lines of several runs, and a failed
// run's "broken" line with its error's first line.
func TestAppendVerdicts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verdicts")
	cfg := config{verdicts: path}
	line := verdictLine{"arbor-rule", []check{{checkSpec{mThroughput, "arbor-auth", ">=", 0.95}, 0.97, 3}}}
	if err := reportVerdicts(cfg, "heading", []verdictLine{line}); err != nil {
		t.Fatal(err)
	}
	if err := appendVerdicts(path, brokenLine("loadbench-tls", errors.New("errors during the run:\n  round 1, arbor-anon-tls: 5 requests reached the upstream"))); err != nil {
		t.Fatal(err)
	}
	if err := appendVerdicts("", "ignored"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "verdict arbor-rule         throughput 0.97x arbor-auth (>= 0.95x) MET\n" +
		"broken  loadbench-tls      errors during the run: round 1, arbor-anon-tls: 5 requests reached the upstream\n"
	if string(b) != want {
		t.Errorf("the file holds\n%s\nwant\n%s", b, want)
	}
}
