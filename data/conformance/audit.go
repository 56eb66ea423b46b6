package conformance

import (
	"slices"
	"time"

	"github.com/vintner/arbor/data"
)

var auditTests = append([]subtest{
	{"AppendAssignsSeqAndTime", func(e *env) {
		in := data.AuditEvent{
			Action: "session.create", Actor: "u1", UserID: "u1", Target: "session", Outcome: "ok",
			RequestID: "req-1", IP: "192.0.2.1", Details: map[string]string{"provider": "github"},
		}
		first, err := e.s.AppendAudit(e.ctx, in)
		e.ok(err, "AppendAudit")
		want := in
		want.Seq, want.Time = first.Seq, e.clock.Now()
		e.equal(first, want, "AppendAudit result (Time defaults to the store's now)")
		if first.Seq == 0 {
			e.t.Fatal("AppendAudit assigned Seq 0; AfterSeq 0 would never return it")
		}

		stamped := data.AuditEvent{Action: "worker.rotate", Time: Start.Add(-time.Hour), Seq: 999999}
		second, err := e.s.AppendAudit(e.ctx, stamped)
		e.ok(err, "AppendAudit with a Time and a Seq of its own")
		if second.Seq <= first.Seq || !second.Time.Equal(stamped.Time) {
			e.t.Fatalf("second event: Seq %d (first was %d), Time %v; want a larger Seq and the given Time %v",
				second.Seq, first.Seq, second.Time, stamped.Time)
		}

		got, err := e.s.ListAudit(e.ctx, data.AuditQuery{})
		e.returned(got, err, []data.AuditEvent{first, second}, "ListAudit returns the stored events")
	}},
	{"Query", func(e *env) {
		var all []data.AuditEvent
		for i, u := range []string{"u1", "u2", "u1", "", "u1", "u2"} {
			ev, err := e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "a" + string(rune('0'+i)), UserID: u})
			e.ok(err, "AppendAudit")
			all = append(all, ev)
		}
		seqs := func(evs []data.AuditEvent) []string { return ids(evs, auditSeq) }
		pick := func(is ...int) []string {
			var out []string
			for _, i := range is {
				out = append(out, auditSeq(all[i]))
			}
			return out
		}
		for _, tc := range []struct {
			name string
			q    data.AuditQuery
			want []string
		}{
			{"everything", data.AuditQuery{}, pick(0, 1, 2, 3, 4, 5)},
			{"after the second", data.AuditQuery{AfterSeq: all[1].Seq}, pick(2, 3, 4, 5)},
			{"after the last", data.AuditQuery{AfterSeq: all[5].Seq}, nil},
			{"limit", data.AuditQuery{Limit: 2}, pick(0, 1)},
			{"user", data.AuditQuery{UserID: "u1"}, pick(0, 2, 4)},
			{"user after", data.AuditQuery{UserID: "u1", AfterSeq: all[0].Seq}, pick(2, 4)},
			{"user limit", data.AuditQuery{UserID: "u2", Limit: 1}, pick(1)},
			{"user after limit", data.AuditQuery{UserID: "u1", AfterSeq: all[0].Seq, Limit: 1}, pick(2)},
			{"unknown user", data.AuditQuery{UserID: "u3"}, nil},
		} {
			got, err := e.s.ListAudit(e.ctx, tc.q)
			e.ok(err, "ListAudit "+tc.name)
			e.orderIs(seqs(got), tc.want, "ListAudit "+tc.name)
		}
	}},
	{"ConcurrentAppendsGetDistinctIncreasingSeqs", func(e *env) {
		const n = 100
		got := make([]data.AuditEvent, n)
		errs := make([]error, n)
		concurrently(n, func(i int) {
			got[i], errs[i] = e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "concurrent", Target: string(rune('A' + i%26))})
		})
		for _, err := range errs {
			e.ok(err, "concurrent AppendAudit")
		}
		returned := make([]uint64, n)
		for i, ev := range got {
			returned[i] = ev.Seq
		}
		slices.Sort(returned)
		listed, err := e.s.ListAudit(e.ctx, data.AuditQuery{})
		e.ok(err, "ListAudit")
		if len(listed) != n {
			e.t.Fatalf("ListAudit returned %d events after %d appends", len(listed), n)
		}
		for i, ev := range listed {
			if i > 0 && ev.Seq <= listed[i-1].Seq {
				e.t.Fatalf("ListAudit: Seq %d follows %d; Seq must strictly increase", ev.Seq, listed[i-1].Seq)
			}
			if ev.Seq != returned[i] {
				e.t.Fatalf("ListAudit's %dth Seq is %d, but the appends returned %d there: each append must return the Seq it stored",
					i, ev.Seq, returned[i])
			}
		}
	}},
}, auditQueryTests...)
