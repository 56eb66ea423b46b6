package clilogin

import (
	"fmt"
	"testing"
	"time"
)

// TestPendingSlotsMemoryBounded: whatever the number of addresses and of
// take/release cycles, the tables stay within the cap.
func TestPendingSlotsMemoryBounded(t *testing.T) {
	p := newPendingSlots(1000, 2)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 200_000 {
		code := fmt.Sprintf("code-%d", i)
		_, err := p.take(code, fmt.Sprintf("addr-%d", i), now, now.Add(11*time.Minute))
		if i%3 == 0 && err == nil {
			p.release(code) // approved or denied
		}
		if i%5000 == 0 {
			now = now.Add(time.Minute)
		}
		if len(p.slots) > 1000 || len(p.perAddr) > 1000 || len(p.fifo) > 2*1000+64+1 {
			t.Fatalf("after %d starts: %d slots, %d addresses, %d queued", i, len(p.slots), len(p.perAddr), len(p.fifo))
		}
	}
	for i := range 100_000 {
		p.poll(fmt.Sprintf("poll-%d", i), now, now.Add(time.Minute))
		if len(p.polls) > p.maxPolls {
			t.Fatalf("%d poll entries, max %d", len(p.polls), p.maxPolls)
		}
	}
	// Everything expires.
	total, _ := p.counts("", now.Add(12*time.Minute))
	if total != 0 || len(p.perAddr) != 0 {
		t.Fatalf("after expiry: %d slots, %d addresses", total, len(p.perAddr))
	}
}
