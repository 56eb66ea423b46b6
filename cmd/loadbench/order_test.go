package main

import (
	"slices"
	"strings"
	"testing"
)

func TestRoundOrder(t *testing.T) {
	all := []string{"upstream", "bare", "arbor-anon", "arbor-auth", "arbor-worker", "arbor-rule"}
	tests := []struct {
		name    string
		targets []string
		want    []string // rounds 1, 2, 3, 4, each comma-joined
	}{
		{"every target: each verdict's pair adjacent or one apart, forwards then backwards", all, []string{
			"upstream,arbor-worker,bare,arbor-anon,arbor-auth,arbor-rule",
			"upstream,arbor-rule,arbor-auth,arbor-anon,bare,arbor-worker",
			"upstream,arbor-worker,bare,arbor-anon,arbor-auth,arbor-rule",
			"upstream,arbor-rule,arbor-auth,arbor-anon,bare,arbor-worker",
		}},
		{"no rule", []string{"upstream", "bare", "arbor-anon", "arbor-auth", "arbor-worker"}, []string{
			"upstream,arbor-worker,bare,arbor-anon,arbor-auth",
			"upstream,arbor-auth,arbor-anon,bare,arbor-worker",
			"upstream,arbor-worker,bare,arbor-anon,arbor-auth",
			"upstream,arbor-auth,arbor-anon,bare,arbor-worker",
		}},
		{"no bare (-only): the Arbor targets rotate", []string{"arbor-anon", "arbor-auth"}, []string{
			"arbor-anon,arbor-auth", "arbor-auth,arbor-anon", "arbor-anon,arbor-auth", "arbor-auth,arbor-anon",
		}},
		{"replicas: their pair after the others, back to back", []string{"upstream", "bare", "arbor-anon", "arbor-auth", "arbor-auth-1r", "arbor-auth-2r"}, []string{
			"upstream,bare,arbor-anon,arbor-auth,arbor-auth-1r,arbor-auth-2r",
			"upstream,arbor-auth-2r,arbor-auth-1r,arbor-auth,arbor-anon,bare",
			"upstream,bare,arbor-anon,arbor-auth,arbor-auth-1r,arbor-auth-2r",
			"upstream,arbor-auth-2r,arbor-auth-1r,arbor-auth,arbor-anon,bare",
		}},
		{"no Arbor target", []string{"upstream", "bare"}, []string{"upstream,bare", "upstream,bare", "upstream,bare", "upstream,bare"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.targets)
			for r := 1; r <= 4; r++ {
				got := roundOrder(in, func(s string) string { return s }, r)
				if g := strings.Join(got, ","); g != tc.want[r-1] {
					t.Errorf("round %d: %s, want %s", r, g, tc.want[r-1])
				}
				if !slices.Equal(in, tc.targets) {
					t.Fatalf("round %d changed its input: %v", r, in)
				}
			}
		})
	}
}
