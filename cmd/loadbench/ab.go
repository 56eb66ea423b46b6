package main

// The A/B comparison (-ab, make loadbench-ab): two builds of Arbor side
// by side, to judge a change of a few per cent of CPU per request on a
// noisy shared machine.
//
// Throughput ratios on this VM moved by up to 0.12 between runs of one
// binary, so a change of 1–5 % cannot be seen in them, nor in `make
// loadbench`'s comparison with the bare proxy. CPU time per request,
// which other processes on the machine barely move, can: A against
// itself gave CPU ratios within ±2 %. So the run is
//
//   - the upstream and the bare proxy (loadbench's own child modes), and
//     two `arbor serve`: A from -arbor-cmd, started and signed in exactly
//     as in the plain run (the same environment, fresh secrets,
//     auth.default_route public, the fake providers), and B from
//     -arbor-cmd-b with the same environment but its own listen address,
//     public URL and data dir (and A's compiled plugin cache, so that it
//     starts in seconds);
//   - a one-second warm-up of each, then rounds: in each, wrk at bare, A
//     and B in turn, bare first and A and B in an order that alternates
//     between rounds (bare A B, bare B A, …), so that neither always runs
//     right after the bare proxy or last; each process's utime+stime from
//     /proc/PID/stat is read just before and just after its own wrk, so
//     that CPU per request is per process per round;
//   - the figures: every round's req/s and CPU µs/req of each process and
//     the ratios B/A, A/bare and B/bare; at the end the median of the
//     per-round ratios, with their range. A ratio pairs two runs of the
//     same round, seconds apart, so that a slow spell of the machine
//     moves one pair, not one build's median.
//
// -ab-kind anon (the default) measures requests without a cookie; auth
// measures each Arbor with its own session cookie (signed in through the
// fake GitHub at each: A's and B's stores are their own), so that the
// session check is in the comparison. The identity checks of the plain
// run hold for every measurement of A and B: with a cookie every request
// reaches the upstream with the user id header, without one none does.
//
// There are no verdict lines: the run is a diagnostic of a change, not a
// target. It fails, like the other modes, only on a broken run: a child
// that exits, wrk failing or reporting non-2xx answers or socket errors, a
// measurement without a request, sign-in failing, a missing or unexpected
// identity header.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vintner/arbor/gateway/authn/session"
)

// abSetup is what runMode has started for an -ab run: the upstream, the
// bare proxy and A, A's environment (B's starts from it) and, with -auth,
// A's session cookie.
type abSetup struct {
	start                          func(name string, cmd *exec.Cmd, addr string) (*child, error)
	afterStop                      func(func())
	up, bare, a                    *child
	upAddr, bareAddr, aAddr, bAddr string
	env                            []string
	cookieA                        string // "arbor_session=…"; "" without -auth
	auth                           bool   // the fake providers run and A was signed in
	tck                            int64  // clock ticks per second
}

// The processes of an -ab round, in the order of abRound's arrays.
const (
	abBare = iota
	abA
	abB
)

var abNames = [3]string{"bare", "A", "B"}

// checkAB checks the flags of an -ab run.
func checkAB(cfg config) error {
	switch {
	case !cfg.ab:
		return errors.New("-arbor-cmd-b needs -ab")
	case cfg.arborCmd == "" || cfg.arborCmdB == "":
		return errors.New("-ab needs -arbor-cmd (A) and -arbor-cmd-b (B): it compares two builds of `arbor serve`")
	case cfg.tls || cfg.git || cfg.flood || cfg.only != "" || cfg.store != "bbolt" || cfg.replicas != 1:
		return errors.New("-ab runs alone: with the bbolt store, one replica, no -tls, -git, -flood or -only")
	case cfg.abKind != "anon" && cfg.abKind != "auth":
		return fmt.Errorf("-ab-kind %q: use anon or auth", cfg.abKind)
	case cfg.abKind == "auth" && !cfg.auth:
		return errors.New("-ab-kind auth signs in at A and B: it needs -auth")
	}
	return nil
}

// abOrder is the order of round r (from 1): bare first, then A and B,
// which change places every round.
func abOrder(r int) [3]int {
	if r%2 == 0 {
		return [3]int{abBare, abB, abA}
	}
	return [3]int{abBare, abA, abB}
}

// abRound is one round's figures, indexed by abBare, abA, abB.
type abRound struct {
	rps [3]float64 // wrk's req/s
	cpu [3]float64 // the process's CPU µs per request
}

// ratioStat is the median and range of per-round ratios, over n pairs.
type ratioStat struct {
	med, lo, hi float64 // NaN without a pair
	n           int
}

// pairedStats is the median, minimum and maximum over rounds of
// num[i]/den[i]. A round where either figure is not a positive finite
// number (a measurement without a request, a CPU clock that did not
// move) is left out: its ratio would say nothing.
func pairedStats(num, den []float64) ratioStat {
	rs := roundRatios(num, den, func(n, d float64) bool { return usable(n) && usable(d) })
	if len(rs) == 0 {
		return ratioStat{med: math.NaN(), lo: math.NaN(), hi: math.NaN()}
	}
	return ratioStat{med: median(rs), lo: slices.Min(rs), hi: slices.Max(rs), n: len(rs)}
}

// usable reports whether v is a positive finite figure.
func usable(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

// abPair is the throughput and CPU-per-request ratios of one comparison.
type abPair struct{ rps, cpu ratioStat }

// abSummary is the run's result: the per-round ratios of B over A, A
// over bare and B over bare.
type abSummary struct {
	ba, aBare, bBare abPair
}

// summarize computes the summary of the rounds.
func summarize(rounds []abRound) abSummary {
	col := func(metric func(abRound) [3]float64, who int) []float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = metric(r)[who]
		}
		return v
	}
	rps := func(r abRound) [3]float64 { return r.rps }
	cpu := func(r abRound) [3]float64 { return r.cpu }
	pair := func(num, den int) abPair {
		return abPair{rps: pairedStats(col(rps, num), col(rps, den)), cpu: pairedStats(col(cpu, num), col(cpu, den))}
	}
	return abSummary{ba: pair(abB, abA), aBare: pair(abA, abBare), bBare: pair(abB, abBare)}
}

// String is the summary line, one line that scripts can read back with
// parseABSummary:
//
//	ab: B/A cpu/req 0.951 (0.930–0.970), req/s 1.036 (1.010–1.060), over 20 rounds; A/bare cpu/req 1.160, req/s 0.905; B/bare cpu/req 1.103, req/s 0.938
func (s abSummary) String() string {
	return fmt.Sprintf("ab: B/A cpu/req %.3f (%.3f–%.3f), req/s %.3f (%.3f–%.3f), over %d rounds; A/bare cpu/req %.3f, req/s %.3f; B/bare cpu/req %.3f, req/s %.3f",
		s.ba.cpu.med, s.ba.cpu.lo, s.ba.cpu.hi, s.ba.rps.med, s.ba.rps.lo, s.ba.rps.hi, s.ba.cpu.n,
		s.aBare.cpu.med, s.aBare.rps.med, s.bBare.cpu.med, s.bBare.rps.med)
}

// reABSummary reads back abSummary.String's line; a figure is a decimal
// or, where no round gave a pair, NaN.
var reABSummary = func() *regexp.Regexp {
	const num = `(NaN|[+-]?Inf|\d+(?:\.\d+)?)`
	return regexp.MustCompile(`^ab: B/A cpu/req ` + num + ` \(` + num + `–` + num + `\), req/s ` + num + ` \(` + num + `–` + num +
		`\), over (\d+) rounds; A/bare cpu/req ` + num + `, req/s ` + num + `; B/bare cpu/req ` + num + `, req/s ` + num + `$`)
}()

// parseABSummary parses the summary line, for the benchmark smoke and for
// scripts. The figures it gives are those of the line: medians of B/A,
// A/bare and B/bare, the range of B/A only, every n the rounds counted.
func parseABSummary(line string) (abSummary, error) {
	m := reABSummary.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return abSummary{}, fmt.Errorf("not an ab summary line: %q", line)
	}
	var f [10]float64
	for i, j := 0, 1; j < len(m); j++ {
		if j == 7 {
			continue // the rounds
		}
		v, err := strconv.ParseFloat(m[j], 64)
		if err != nil {
			return abSummary{}, fmt.Errorf("ab summary line: figure %q: %w", m[j], err)
		}
		f[i] = v
		i++
	}
	n, err := strconv.Atoi(m[7])
	if err != nil {
		return abSummary{}, fmt.Errorf("ab summary line: rounds %q: %w", m[7], err)
	}
	nan := math.NaN()
	only := func(med float64) ratioStat { return ratioStat{med: med, lo: nan, hi: nan, n: n} }
	return abSummary{
		ba: abPair{
			cpu: ratioStat{med: f[0], lo: f[1], hi: f[2], n: n},
			rps: ratioStat{med: f[3], lo: f[4], hi: f[5], n: n},
		},
		aBare: abPair{cpu: only(f[6]), rps: only(f[7])},
		bBare: abPair{cpu: only(f[8]), rps: only(f[9])},
	}, nil
}

// runAB starts B beside what runMode started, checks it, and runs the
// paired rounds (see the file's comment).
func runAB(cfg config, s abSetup) error {
	// B starts once A is ready, so that A's compiled plugin cache, which
	// B shares, is complete.
	if err := waitReady(s.aAddr, 3*time.Minute); err != nil {
		return fmt.Errorf("A never became ready (log: %s): %w", filepath.Join(cfg.logDir, "arbor.log"), err)
	}
	dir, err := os.MkdirTemp("", "loadbench-ab-b-")
	if err != nil {
		return err
	}
	s.afterStop(func() { _ = os.RemoveAll(dir) })
	cmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmdB)
	cmd.Env = append(slices.Clone(s.env), "ARBOR_LISTEN="+s.bAddr, "ARBOR_DATA_DIR="+dir)
	if s.auth {
		cmd.Env = append(cmd.Env, "ARBOR_PUBLIC_URL=http://"+s.bAddr)
	}
	cmd.Env = append(cmd.Env, sharedPluginCache()...)
	b, err := s.start("arbor-b", cmd, s.bAddr)
	if err != nil {
		return err
	}
	bLog := filepath.Join(cfg.logDir, "arbor-b.log")
	if err := waitReady(s.bAddr, 3*time.Minute); err != nil {
		return fmt.Errorf("B never became ready (log: %s): %w", bLog, err)
	}
	var cookieB string
	if s.auth {
		value, err := signIn("http://" + s.bAddr)
		if err != nil {
			return fmt.Errorf("signing in at B through the fake GitHub (log: %s): %w", bLog, err)
		}
		cookieB = session.InsecureCookieName + "=" + value
		// The checks runMode made at A: the cookie makes B add the
		// identity, no cookie does not.
		if err := identityCheck(s.upAddr, s.bAddr, cookieB, 1); err != nil {
			return fmt.Errorf("B (log: %s): %w", bLog, err)
		}
	}
	if err := identityCheck(s.upAddr, s.bAddr, "", 0); err != nil {
		return fmt.Errorf("B (log: %s): %w", bLog, err)
	}

	type proc struct {
		c        *child
		addr     string
		headers  []string
		identity int // as the plain run's targets: 1, 0, or -1 unchecked
	}
	procs := [3]proc{
		abBare: {c: s.bare, addr: s.bareAddr, identity: -1},
		abA:    {c: s.a, addr: s.aAddr},
		abB:    {c: b, addr: s.bAddr},
	}
	if cfg.abKind == "auth" {
		procs[abA].headers, procs[abA].identity = []string{"Cookie: " + s.cookieA}, 1
		procs[abB].headers, procs[abB].identity = []string{"Cookie: " + cookieB}, 1
	}

	fmt.Printf("loadbench -ab: %d rounds × (bare, A, B) × %v, wrk -t%d -c%d, body %d B, requests %s, CPU clock %d ticks/s, logs in %s\n",
		cfg.rounds, cfg.duration, cfg.threads, cfg.connections, cfg.bodyBytes, abKindText(cfg.abKind), s.tck, cfg.logDir)
	fmt.Printf("A: %s\nB: %s\n", cfg.arborCmd, cfg.arborCmdB)
	fmt.Println("each round: bare first, then A and B in an order that alternates; CPU µs/req is each process's utime+stime during its own wrk over its requests; B/A below 1 in CPU/req: B is cheaper")
	if cfg.rounds%2 == 1 {
		// The alternation cancels a cost of the position in the round
		// (running right after the bare proxy, or last) only over pairs
		// of rounds.
		fmt.Printf("note: -rounds %d is odd, so A runs right after bare once more than B; an even number balances the orders\n", cfg.rounds)
	}
	for _, i := range abOrder(1) {
		if _, err := runWrk(cfg, procs[i].addr, time.Second, procs[i].headers); err != nil {
			return fmt.Errorf("warm-up of %s: %w", abNames[i], err)
		}
	}

	// One line per round as it ends, so that a long run shows progress.
	const rowFmt = "%5s  %-8s  %10s %9s %9s  %12s %9s %9s  %10s %9s  %13s %11s  %13s %11s\n"
	fmt.Println()
	fmt.Printf(rowFmt, "round", "order", "bare req/s", "A req/s", "B req/s", "bare µs/req", "A µs/req", "B µs/req",
		"B/A req/s", "B/A cpu", "A/bare req/s", "A/bare cpu", "B/bare req/s", "B/bare cpu")
	var rounds []abRound
	var failures []string
	for r := 1; r <= cfg.rounds; r++ {
		var got abRound
		var order []string
		for _, i := range abOrder(r) {
			p := procs[i]
			order = append(order, abNames[i])
			what := fmt.Sprintf("round %d, %s", r, abNames[i])
			var idBefore int64
			if p.identity >= 0 {
				// Settled: the previous wrk's in-flight tail is counted
				// before this one starts (as in the plain run).
				if idBefore, err = settledUpstreamCount(s.upAddr); err != nil {
					return err
				}
			}
			before, err := cpuTicks(p.c.pid())
			if err != nil {
				return err
			}
			res, err := runWrk(cfg, p.addr, cfg.duration, p.headers)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			after, err := cpuTicks(p.c.pid())
			if err != nil {
				return err
			}
			if f := wrkFailure(res); f != "" {
				failures = append(failures, what+": "+f)
			}
			if p.identity >= 0 {
				read := upstreamCount
				if p.identity == 0 {
					read = settledUpstreamCount
				}
				idAfter, err := read(s.upAddr)
				if err != nil {
					return err
				}
				if f := identityFailure(p.identity, idAfter-idBefore, res.requests); f != "" {
					failures = append(failures, what+": "+f)
				}
			}
			got.rps[i], got.cpu[i] = res.reqPerSec, ticksPer(after-before, res.requests, s.tck)
		}
		rounds = append(rounds, got)
		one := summarize([]abRound{got})
		fmt.Printf(rowFmt, strconv.Itoa(r), strings.Join(order, " "),
			fixed(got.rps[abBare], 0), fixed(got.rps[abA], 0), fixed(got.rps[abB], 0),
			fixed(got.cpu[abBare], 1), fixed(got.cpu[abA], 1), fixed(got.cpu[abB], 1),
			fixed(one.ba.rps.med, 3), fixed(one.ba.cpu.med, 3), fixed(one.aBare.rps.med, 3), fixed(one.aBare.cpu.med, 3),
			fixed(one.bBare.rps.med, 3), fixed(one.bBare.cpu.med, 3))
	}

	sum := summarize(rounds)
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\treq/s (median)\tCPU µs/req (median)\t")
	for i, name := range abNames {
		var rps, cpu []float64
		for _, r := range rounds {
			rps, cpu = append(rps, r.rps[i]), append(cpu, r.cpu[i])
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t\n", name, median(rps), median(cpu))
	}
	_ = tw.Flush()
	fmt.Println()
	fmt.Fprintf(tw, "per-round ratio\treq/s median\t(min–max)\tCPU/req median\t(min–max)\t\n")
	for _, row := range []struct {
		name string
		p    abPair
	}{{"B/A", sum.ba}, {"A/bare", sum.aBare}, {"B/bare", sum.bBare}} {
		fmt.Fprintf(tw, "%s\t%.3f\t(%.3f–%.3f)\t%.3f\t(%.3f–%.3f)\t\n", row.name,
			row.p.rps.med, row.p.rps.lo, row.p.rps.hi, row.p.cpu.med, row.p.cpu.lo, row.p.cpu.hi)
	}
	_ = tw.Flush()
	fmt.Println()
	fmt.Println(sum)
	return checkRun(failures, cfg, s.up, s.bare, s.a, b)
}

// fixed is v with prec decimals.
func fixed(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

// abKindText says what -ab-kind measures.
func abKindText(kind string) string {
	if kind == "auth" {
		return "with each Arbor's own session cookie (auth)"
	}
	return "without a cookie (anon)"
}
