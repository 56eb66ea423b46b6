package main

// Verdict lines (issue 20, "keep it from drifting back"): every mode of
// loadbench ends with one line per judged target, in one form,
//
//	verdict arbor-anon         throughput 0.91x bare (>= 0.90x) MET; CPU/req 1.22x bare (<= 1.25x) MET
//
// and appends the same lines to the file named by -verdicts, which `make
// bench` prints as one block after all its runs. Each ratio is the median
// of per-round paired ratios: in round i, target's figure over base's
// figure of the same round, seconds apart, so that a slow spell of a
// shared machine moves one pair rather than one target's median. A line is
// a report, never an exit status: loadbench fails only on a broken run.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Metric names: the per-round figures a verdict compares.
const (
	mThroughput = "throughput"   // req/s
	mCPU        = "CPU/req"      // µs of the measured process per request
	mHandshakes = "handshakes/s" // full TLS handshakes per second
	mP99        = "p99"          // 99th percentile latency
)

// roundFigures holds each target's per-round figures by metric; index i
// of every slice is round i, so that figures of one round pair up.
type roundFigures map[string]map[string][]float64

// add appends v as the next round's figure of target's metric.
func (f roundFigures) add(target, metric string, v float64) {
	if f[target] == nil {
		f[target] = map[string][]float64{}
	}
	f[target][metric] = append(f[target][metric], v)
}

// pairedMedian is the median over rounds of a[i]/b[i], and how many pairs
// it had: rounds where either figure is missing or b[i] is not positive
// (a CPU clock that did not move) are left out. NaN without a pair.
func pairedMedian(a, b []float64) (float64, int) {
	rs := roundRatios(a, b, func(a, b float64) bool { return b > 0 && !math.IsNaN(a) })
	if len(rs) == 0 {
		return math.NaN(), 0
	}
	return median(rs), len(rs)
}

// roundRatios is a[i]/b[i] for the rounds whose figures keep accepts.
func roundRatios(a, b []float64, keep func(a, b float64) bool) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if keep(a[i], b[i]) {
			rs = append(rs, a[i]/b[i])
		}
	}
	return rs
}

// checkSpec is one judged ratio: target's metric over base's, against
// limit with op (">=", "<=", "<"; "" reports the ratio without a target).
type checkSpec struct {
	metric, base, op string
	limit            float64
}

// verdictSpec is the checks of one target's line.
type verdictSpec struct {
	target string
	checks []checkSpec
}

// check is a checkSpec with its measured ratio.
type check struct {
	checkSpec
	ratio float64 // NaN: no round to pair
	pairs int
}

// met reports whether the ratio meets the limit; a check without a
// target is met, one without a measured pair is not.
func (c check) met() bool {
	if math.IsNaN(c.ratio) {
		return false
	}
	switch c.op {
	case ">=":
		return c.ratio >= c.limit
	case "<=":
		return c.ratio <= c.limit
	case "<":
		return c.ratio < c.limit
	}
	return true
}

func (c check) String() string {
	if math.IsNaN(c.ratio) {
		return fmt.Sprintf("%s - %s (%s %.2fx) UNMEASURED", c.metric, c.base, c.op, c.limit)
	}
	if c.op == "" {
		return fmt.Sprintf("%s %.2fx %s (no target) REPORTED", c.metric, c.ratio, c.base)
	}
	word := "MET"
	if !c.met() {
		word = "MISSED"
	}
	return fmt.Sprintf("%s %sx %s (%s %.2fx) %s", c.metric, ratioText(c.ratio, c.limit), c.base, c.op, c.limit, word)
}

// ratioText is r with two decimals, or up to four where two would read
// as the limit itself (0.8996 is not "0.90x (>= 0.90x) MISSED" but
// "0.8996x").
func ratioText(r, limit float64) string {
	for prec := 2; ; prec++ {
		t := strconv.FormatFloat(r, 'f', prec, 64)
		if prec == 4 || r == limit || t != strconv.FormatFloat(limit, 'f', prec, 64) {
			return t
		}
	}
}

// verdictLine is one target's line.
type verdictLine struct {
	target string
	checks []check
}

func (v verdictLine) String() string {
	parts := make([]string, len(v.checks))
	for i, c := range v.checks {
		parts[i] = c.String()
	}
	return fmt.Sprintf("verdict %-18s %s", v.target, strings.Join(parts, "; "))
}

// met reports whether every check of the line is met.
func (v verdictLine) met() bool {
	for _, c := range v.checks {
		if !c.met() {
			return false
		}
	}
	return true
}

// judge makes the lines of specs from the figures: a line for each spec
// whose target was measured, with the checks whose base was measured too
// (-only measures a subset), and no line where none is left. label is
// added to every name in the lines ("@etcd" for a run on etcd, so that its
// lines are told from the bbolt run's in `make bench`).
func judge(specs []verdictSpec, f roundFigures, label string) []verdictLine {
	var out []verdictLine
	for _, s := range specs {
		if f[s.target] == nil {
			continue
		}
		line := verdictLine{target: s.target + label}
		for _, cs := range s.checks {
			if f[cs.base] == nil {
				continue
			}
			r, n := pairedMedian(f[s.target][cs.metric], f[cs.base][cs.metric])
			c := check{checkSpec: cs, ratio: r, pairs: n}
			c.base += label
			line.checks = append(line.checks, c)
		}
		if len(line.checks) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// proxySpecs are issue 20's targets for the proxied request kinds against
// the bare Fiber proxy; tlsSpecs (tlsbench.go) are the same over TLS.
func proxySpecs(suffix string) []verdictSpec {
	bare, anon := "bare"+suffix, "arbor-anon"+suffix
	kind := func(name string) verdictSpec {
		return verdictSpec{name + suffix, []checkSpec{
			{mThroughput, anon, ">=", 0.90},
			{mThroughput, bare, ">=", 0.80},
		}}
	}
	return []verdictSpec{
		{anon, []checkSpec{{mThroughput, bare, ">=", 0.90}, {mCPU, bare, "<=", 1.25}}},
		kind("arbor-auth"),
		kind("arbor-worker"),
	}
}

// plainSpecs are the lines of `make loadbench` and `make loadbench-etcd`:
// issue 20's, the route rule's (issue 19: at least 0.95x the throughput
// without) and, with two replicas, their ratio, which has no target (on a
// small machine it is bounded by the cores; see the replicas note).
var plainSpecs = append(proxySpecs(""),
	verdictSpec{"arbor-rule", []checkSpec{{mThroughput, "arbor-auth", ">=", 0.95}}},
	verdictSpec{"arbor-auth-2r", []checkSpec{{mThroughput, "arbor-auth-1r", "", 0}}},
)

// floodSpecs is issue 15's: signed-in throughput under flood at least 0.5x
// quiet, p99 latency under 3x.
var floodSpecs = []verdictSpec{
	{"arbor-auth-flood", []checkSpec{{mThroughput, "quiet", ">=", 0.50}, {mP99, "quiet", "<", 3}}},
}

// reportVerdicts prints the lines as one block after a heading that says
// how they were computed, and appends them to the -verdicts file if one
// is named.
func reportVerdicts(cfg config, heading string, lines []verdictLine) error {
	fmt.Printf("\n%s\n", heading)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	fmt.Print(b.String())
	return appendVerdicts(cfg.verdicts, b.String())
}

// appendVerdicts appends text to the file path ("" for none).
func appendVerdicts(path, text string) error {
	if path == "" || text == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("-verdicts: %w", err)
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}

// brokenLine is what a failed run adds to the -verdicts file, so that the
// block of `make bench` shows it beside the others: the mode and the
// error on one line, cut at 300 bytes (the run's output has all of it).
func brokenLine(mode string, err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 300 {
		msg = msg[:300] + " …"
	}
	return fmt.Sprintf("broken  %-18s %s\n", mode, msg)
}

// reVerdict reads back a verdict line, for the benchmark smoke and for
// scripts: the target and each check's metric, ratio, base and word.
var (
	reVerdict = regexp.MustCompile(`^verdict (\S+)\s+(.+)$`)
	reCheck   = regexp.MustCompile(`^(\S+) (-|[\d.]+x) (\S+) \((?:(>=|<=|<) ([\d.]+)x|no target)\) (MET|MISSED|REPORTED|UNMEASURED)$`)
)

// parsedCheck is one check of a parsed line.
type parsedCheck struct {
	metric, base, word string
	ratio              float64 // NaN when unmeasured
}

// parseVerdict parses a line that verdictLine.String made.
func parseVerdict(line string) (target string, checks []parsedCheck, err error) {
	m := reVerdict.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return "", nil, fmt.Errorf("not a verdict line: %q", line)
	}
	for _, part := range strings.Split(m[2], "; ") {
		c := reCheck.FindStringSubmatch(part)
		if c == nil {
			return "", nil, fmt.Errorf("verdict %s: cannot read the check %q", m[1], part)
		}
		r := math.NaN()
		if c[2] != "-" {
			if r, err = strconv.ParseFloat(strings.TrimSuffix(c[2], "x"), 64); err != nil {
				return "", nil, fmt.Errorf("verdict %s: ratio %q: %w", m[1], c[2], err)
			}
		}
		checks = append(checks, parsedCheck{metric: c[1], base: c[3], word: c[6], ratio: r})
	}
	return m[1], checks, nil
}

// identityFailure says what is wrong when n requests reached the upstream
// with the user id header while wrk made requests requests, or "":
// identity 1, every request must carry it (the upstream may count a few
// more than wrk, those in flight when wrk stopped, never fewer); 0, none
// may (an anonymous request that carries an identity is one crossing);
// -1, not checked.
func identityFailure(identity int, n, requests int64) string {
	switch {
	case identity == 1 && n < requests:
		return fmt.Sprintf("only %d of %d requests reached the upstream with %s", n, requests, userIDHeader)
	case identity == 0 && n != 0:
		return fmt.Sprintf("%d requests reached the upstream with %s", n, userIDHeader)
	}
	return ""
}

// wrkFailure says what makes a wrk measurement a broken one, or "":
// non-2xx answers or socket errors, or no request at all.
func wrkFailure(r wrkResult) string {
	switch {
	case r.errors > 0:
		return fmt.Sprintf("%d non-2xx responses or socket errors", r.errors)
	case r.requests == 0:
		return "wrk completed no request"
	}
	return ""
}
