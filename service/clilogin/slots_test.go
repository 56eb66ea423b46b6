package clilogin

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPendingSlotsAgainstModel drives the pending-slot table with a long,
// seeded mix of takes, releases and clock steps (what a replica sees when
// logins start, are approved and expire in any order) and checks it after
// every step against a plain model: which codes hold a slot, and how many
// each address holds. The table's queue compacts itself as it goes; an
// earlier version lost its place in the queue after one compaction and
// panicked (slice bounds out of range) on the next start.
func TestPendingSlotsAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			const max, perAddr, ttl = 200, 40, 20 * time.Second
			rng := rand.New(rand.NewPCG(seed, seed))
			p := newPendingSlots(max, perAddr)
			type entry struct {
				addr    string
				expires time.Time
			}
			model := map[string]entry{}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			next := 0
			for step := range 20000 {
				switch r := rng.IntN(10); {
				case r < 5: // a start
					code := fmt.Sprintf("code-%d", next)
					next++
					addr := fmt.Sprintf("10.0.0.%d", rng.IntN(10))
					// Every request lives as long (FlowTTL + retention), so
					// slots expire in the order they were taken, as the
					// table's queue assumes.
					expires := now.Add(ttl)
					for c, e := range model { // the model expires first, as take does
						if !now.Before(e.expires) {
							delete(model, c)
						}
					}
					held := 0
					for _, e := range model {
						if e.addr == addr {
							held++
						}
					}
					took, err := p.take(code, addr, now, expires)
					wantBusy := held >= perAddr || len(model) >= max
					if (err != nil) != wantBusy || took == wantBusy {
						t.Fatalf("step %d: take(%s, %s) = %v, %v; the model holds %d in all, %d for the address", step, code, addr, took, err, len(model), held)
					}
					if took {
						model[code] = entry{addr, expires}
					}
				case r < 8: // an approval, a denial or an exchange
					if len(model) == 0 {
						continue
					}
					for c := range model {
						p.release(c)
						delete(model, c)
						break
					}
				default: // time passes
					now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
				}
				total, _ := p.counts("", now)
				live := 0
				for _, e := range model {
					if now.Before(e.expires) {
						live++
					}
				}
				if total != live {
					t.Fatalf("step %d: the table holds %d slots, the model %d", step, total, live)
				}
			}
		})
	}
}
