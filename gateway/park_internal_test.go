package gateway

import (
	"testing"
	"time"
)

// TestReleaseSchedule: the memory of parked connections is given back
// releaseDelay after the last park the sweeper saw, once releaseAfterParks
// were parked; never while fewer were, never before the workers of the
// last ones could have ended, and never later than maxReleaseWait after it
// was first due, however long connections keep being parked.
func TestReleaseSchedule(t *testing.T) {
	const tick = int64(500 * time.Millisecond)
	sec := int64(time.Second)
	tests := []struct {
		name  string
		parks func(now int64) int64 // parks so far at now
		want  int64                 // when the release starts; -1: never (within a minute)
	}{
		{"too few parks", func(int64) int64 { return releaseAfterParks - 1 }, -1},
		{"one wave", func(int64) int64 { return 10000 }, releaseDelay},
		{"a wave parking for 3 s", func(now int64) int64 { return releaseAfterParks + min(now, 3*sec)/tick }, 3*sec + releaseDelay},
		{"parking without end", func(now int64) int64 { return releaseAfterParks + now/tick }, maxReleaseWait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &connTracker{}
			got := int64(-1)
			for now := int64(0); now <= 60*sec && got < 0; now += tick {
				tr.parksSinceRelease.Store(tc.parks(now))
				if tr.releaseDue(now) {
					got = now
				}
			}
			if got != tc.want {
				t.Errorf("release started at %v, want %v", time.Duration(got), time.Duration(tc.want))
			}
		})
	}
}
