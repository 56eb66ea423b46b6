package main

import (
	"math"
	"strings"
	"testing"
)

// The summary's ratios are medians of per-round ratios, and a round with
// a figure that is not a positive finite number is left out of all of
// them, min and max included.
func TestPairedStats(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name        string
		num, den    []float64
		med, lo, hi float64
		n           int
	}{
		{"one round", []float64{95}, []float64{100}, 0.95, 0.95, 0.95, 1},
		{"odd: the middle ratio, not the ratio of medians", []float64{1, 10, 3}, []float64{1, 5, 4}, 1, 0.75, 2, 3},
		{"even: the mean of the middle two", []float64{9, 10, 11, 12}, []float64{10, 10, 10, 10}, 1.05, 0.9, 1.2, 4},
		{"pairs by round, not by rank", []float64{2, 4}, []float64{4, 2}, 1.25, 0.5, 2, 2},
		{"a zero denominator (a CPU clock that did not move) is left out", []float64{1, 2, 3}, []float64{1, 0, 2}, 1.25, 1, 1.5, 2},
		{"a zero numerator (no request) is left out", []float64{0, 2}, []float64{1, 2}, 1, 1, 1, 1},
		{"NaN and Inf are left out", []float64{nan, 3, inf}, []float64{1, 2, 1}, 1.5, 1.5, 1.5, 1},
		{"lengths differ: the rounds both have", []float64{1, 2, 3}, []float64{2}, 0.5, 0.5, 0.5, 1},
	} {
		got := pairedStats(tc.num, tc.den)
		if got.n != tc.n || !near(got.med, tc.med) || !near(got.lo, tc.lo) || !near(got.hi, tc.hi) {
			t.Errorf("%s: pairedStats = %+v, want med %v (%v–%v) over %d", tc.name, got, tc.med, tc.lo, tc.hi, tc.n)
		}
	}
	for _, tc := range []struct {
		name     string
		num, den []float64
	}{
		{"no rounds", nil, nil},
		{"no usable round", []float64{1, 0}, []float64{0, 1}},
	} {
		if got := pairedStats(tc.num, tc.den); got.n != 0 || !math.IsNaN(got.med) || !math.IsNaN(got.lo) || !math.IsNaN(got.hi) {
			t.Errorf("%s: pairedStats = %+v, want NaN over 0 pairs", tc.name, got)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// summarize pairs each process with the right one, round by round.
func TestSummarize(t *testing.T) {
	rounds := []abRound{
		{rps: [3]float64{1000, 900, 950}, cpu: [3]float64{40, 50, 45}},
		{rps: [3]float64{800, 700, 770}, cpu: [3]float64{50, 60, 60}},
		{rps: [3]float64{1000, 800, 800}, cpu: [3]float64{40, 48, 48}},
	}
	s := summarize(rounds)
	for _, tc := range []struct {
		name     string
		got      ratioStat
		med, lo  float64
		hi       float64
		wantPair int
	}{
		{"B/A req/s", s.ba.rps, 950.0 / 900, 1, 1.1, 3},
		{"B/A cpu", s.ba.cpu, 1, 0.9, 1, 3},
		{"A/bare req/s", s.aBare.rps, 0.875, 0.8, 0.9, 3},
		{"A/bare cpu", s.aBare.cpu, 1.2, 1.2, 1.25, 3},
		{"B/bare req/s", s.bBare.rps, 0.95, 0.8, 0.9625, 3},
		{"B/bare cpu", s.bBare.cpu, 1.2, 1.125, 1.2, 3},
	} {
		if !near(tc.got.med, tc.med) || !near(tc.got.lo, tc.lo) || !near(tc.got.hi, tc.hi) || tc.got.n != tc.wantPair {
			t.Errorf("%s: %+v, want med %v (%v–%v) over %d", tc.name, tc.got, tc.med, tc.lo, tc.hi, tc.wantPair)
		}
	}
}

// Round 1 is bare A B, round 2 bare B A, and so on: bare always first,
// A and B each first after it in half of the rounds.
func TestABOrder(t *testing.T) {
	for r, want := range map[int][3]int{1: {abBare, abA, abB}, 2: {abBare, abB, abA}, 3: {abBare, abA, abB}, 20: {abBare, abB, abA}} {
		if got := abOrder(r); got != want {
			t.Errorf("abOrder(%d) = %v, want %v", r, got, want)
		}
	}
}

// The summary line reads back into the figures it shows, to its three
// decimals; NaN (no pair) reads back as NaN; other lines are refused.
func TestABSummaryLine(t *testing.T) {
	nan := math.NaN()
	st := func(med, lo, hi float64, n int) ratioStat { return ratioStat{med: med, lo: lo, hi: hi, n: n} }
	for _, tc := range []struct {
		name string
		s    abSummary
		line string
	}{
		{"20 rounds", abSummary{
			ba:    abPair{rps: st(1.0361, 1.0104, 1.06, 20), cpu: st(0.9512, 0.93, 0.9704, 20)},
			aBare: abPair{rps: st(0.905, 0.8, 1, 20), cpu: st(1.16, 1.1, 1.2, 20)},
			bBare: abPair{rps: st(0.938, 0.8, 1, 20), cpu: st(1.1034, 1, 1.2, 20)},
		}, "ab: B/A cpu/req 0.951 (0.930–0.970), req/s 1.036 (1.010–1.060), over 20 rounds; A/bare cpu/req 1.160, req/s 0.905; B/bare cpu/req 1.103, req/s 0.938"},
		{"no pair", abSummary{
			ba:    abPair{rps: st(nan, nan, nan, 0), cpu: st(nan, nan, nan, 0)},
			aBare: abPair{rps: st(nan, nan, nan, 0), cpu: st(nan, nan, nan, 0)},
			bBare: abPair{rps: st(nan, nan, nan, 0), cpu: st(nan, nan, nan, 0)},
		}, "ab: B/A cpu/req NaN (NaN–NaN), req/s NaN (NaN–NaN), over 0 rounds; A/bare cpu/req NaN, req/s NaN; B/bare cpu/req NaN, req/s NaN"},
	} {
		line := tc.s.String()
		if line != tc.line {
			t.Errorf("%s: String() =\n%s\nwant\n%s", tc.name, line, tc.line)
		}
		got, err := parseABSummary(line + "\n")
		if err != nil {
			t.Errorf("%s: parseABSummary: %v", tc.name, err)
			continue
		}
		same := func(what string, g, w float64) {
			if !(math.IsNaN(g) && math.IsNaN(w)) && math.Abs(g-w) > 0.0005 {
				t.Errorf("%s: %s read back as %v, want %v", tc.name, what, g, w)
			}
		}
		same("B/A cpu", got.ba.cpu.med, tc.s.ba.cpu.med)
		same("B/A cpu min", got.ba.cpu.lo, tc.s.ba.cpu.lo)
		same("B/A cpu max", got.ba.cpu.hi, tc.s.ba.cpu.hi)
		same("B/A req/s", got.ba.rps.med, tc.s.ba.rps.med)
		same("B/A req/s min", got.ba.rps.lo, tc.s.ba.rps.lo)
		same("B/A req/s max", got.ba.rps.hi, tc.s.ba.rps.hi)
		same("A/bare cpu", got.aBare.cpu.med, tc.s.aBare.cpu.med)
		same("A/bare req/s", got.aBare.rps.med, tc.s.aBare.rps.med)
		same("B/bare cpu", got.bBare.cpu.med, tc.s.bBare.cpu.med)
		same("B/bare req/s", got.bBare.rps.med, tc.s.bBare.rps.med)
		if got.ba.cpu.n != tc.s.ba.cpu.n {
			t.Errorf("%s: rounds read back as %d, want %d", tc.name, got.ba.cpu.n, tc.s.ba.cpu.n)
		}
	}
	for _, bad := range []string{
		"",
		"verdict arbor-anon         throughput 0.91x bare (>= 0.90x) MET",
		"ab: B/A cpu/req 0.951 (0.930-0.970), req/s 1.036 (1.010–1.060), over 20 rounds; A/bare cpu/req 1.160, req/s 0.905; B/bare cpu/req 1.103, req/s 0.938", // ASCII hyphen
		"ab: B/A cpu/req 0.951 (0.930–0.970), req/s 1.036 (1.010–1.060), over 20 rounds; A/bare cpu/req 1.160, req/s 0.905",
		"ab: B/A cpu/req x (0.930–0.970), req/s 1.036 (1.010–1.060), over 20 rounds; A/bare cpu/req 1.160, req/s 0.905; B/bare cpu/req 1.103, req/s 0.938",
	} {
		if _, err := parseABSummary(bad); err == nil {
			t.Errorf("parseABSummary(%q): no error", bad)
		}
	}
}

// -ab needs both commands and runs alone.
func TestCheckAB(t *testing.T) {
	base := config{ab: true, arborCmd: "bin/arbor-base serve", arborCmdB: "bin/arbor serve", abKind: "anon", auth: true, store: "bbolt", replicas: 1}
	for _, tc := range []struct {
		name string
		edit func(c *config)
		want string // part of the error; "" for none
	}{
		{"make loadbench-ab", func(*config) {}, ""},
		{"-ab-kind auth", func(c *config) { c.abKind = "auth" }, ""},
		{"anon without -auth", func(c *config) { c.auth = false }, ""},
		{"auth without -auth", func(c *config) { c.abKind, c.auth = "auth", false }, "needs -auth"},
		{"-arbor-cmd-b without -ab", func(c *config) { c.ab = false }, "needs -ab"},
		{"no -arbor-cmd", func(c *config) { c.arborCmd = "" }, "needs -arbor-cmd"},
		{"no -arbor-cmd-b", func(c *config) { c.arborCmdB = "" }, "-arbor-cmd-b"},
		{"-tls", func(c *config) { c.tls = true }, "runs alone"},
		{"-git", func(c *config) { c.git = true }, "runs alone"},
		{"-flood", func(c *config) { c.flood = true }, "runs alone"},
		{"-only", func(c *config) { c.only = "bare" }, "runs alone"},
		{"etcd", func(c *config) { c.store = "etcd" }, "runs alone"},
		{"-ab-kind worker", func(c *config) { c.abKind = "worker" }, "anon or auth"},
	} {
		c := base
		tc.edit(&c)
		err := checkAB(c)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
