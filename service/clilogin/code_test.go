package clilogin

import (
	"strings"
	"testing"
)

// Quantiles of the chi-squared distribution with 31 degrees of freedom
// (32 symbols): 0.999 for the test over all symbols, and 1-0.001/6
// (Bonferroni over the 6 positions) for the per-position tests, so that the
// whole test fails by chance about 0.2% of the time.
const (
	chi2Q999df31       = 61.098
	chi2Q999Per6df31   = 67.385
	codeUniformSamples = 1_000_000
)

func chiSquared(counts []int, expected float64) float64 {
	var x float64
	for _, n := range counts {
		d := float64(n) - expected
		x += d * d / expected
	}
	return x
}

func TestCodeAlphabetAndUniformity(t *testing.T) {
	if len(CodeAlphabet) != 32 {
		t.Fatalf("CodeAlphabet has %d symbols, want 32", len(CodeAlphabet))
	}
	for _, bad := range "01OI" {
		if strings.ContainsRune(CodeAlphabet, bad) {
			t.Fatalf("CodeAlphabet contains the ambiguous %q", bad)
		}
	}
	index := [256]int{}
	for i := range index {
		index[i] = -1
	}
	for i := 0; i < len(CodeAlphabet); i++ {
		if index[CodeAlphabet[i]] >= 0 {
			t.Fatalf("CodeAlphabet repeats %q", CodeAlphabet[i])
		}
		index[CodeAlphabet[i]] = i
	}

	total := make([]int, len(CodeAlphabet))
	perPos := make([][]int, CodeLength)
	for i := range perPos {
		perPos[i] = make([]int, len(CodeAlphabet))
	}
	seen := make(map[string]struct{}, codeUniformSamples)
	for n := 0; n < codeUniformSamples; n++ {
		code, err := newCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != CodeLength || CodeLength != 6 {
			t.Fatalf("code %q: length %d, want 6", code, len(code))
		}
		for p := 0; p < len(code); p++ {
			k := index[code[p]]
			if k < 0 {
				t.Fatalf("code %q has %q, not in the alphabet", code, code[p])
			}
			total[k]++
			perPos[p][k]++
		}
		if NormalizeCode(strings.ToLower(code)) != code {
			t.Fatalf("NormalizeCode(lower(%q)) = %q", code, NormalizeCode(strings.ToLower(code)))
		}
		seen[code] = struct{}{}
	}

	x := chiSquared(total, float64(codeUniformSamples*CodeLength)/32)
	t.Logf("chi-squared over all %d symbols: %.2f (31 df, fail above %.3f)", codeUniformSamples*CodeLength, x, chi2Q999df31)
	if x > chi2Q999df31 {
		t.Errorf("symbol counts are not uniform: chi-squared %.2f > %.3f\ncounts %v", x, chi2Q999df31, total)
	}
	for p, counts := range perPos {
		x := chiSquared(counts, float64(codeUniformSamples)/32)
		if x > chi2Q999Per6df31 {
			t.Errorf("position %d is not uniform: chi-squared %.2f > %.3f\ncounts %v", p, x, chi2Q999Per6df31, counts)
		}
	}
	// 10^6 draws from 2^30 codes: about 466 collisions expected (n²/2N),
	// standard deviation about 21.6; far more means a weak generator.
	if dup := codeUniformSamples - len(seen); dup > 700 {
		t.Errorf("%d repeated codes among %d, expected about 466", dup, codeUniformSamples)
	}
}
