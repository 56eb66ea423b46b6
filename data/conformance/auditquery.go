package conformance

import (
	"slices"
	"time"

	"github.com/vintner/arbor/data"
)

// Audit queries as operators make them (arbor audit): by action, by time,
// newest first, and paged backwards with BeforeSeq.
var auditQueryTests = []subtest{
	{"Filters", func(e *env) {
		// Events a0..a8. Their Times step forward a minute each, except a5,
		// which carries a Time of its own from before them all: Since is a
		// filter on Time, not a bound on Seq.
		events := []struct {
			user, action string
		}{
			{"u1", "session.sign_in"}, // a0
			{"u2", "user.disabled"},   // a1
			{"u1", "user.enabled"},    // a2
			{"", "keys.rotated"},      // a3
			{"u1", "session.sign_in"}, // a4
			{"u2", "users.listed"},    // a5, Time: an hour before Start
			{"u1", "user"},            // a6
			{"u2", "session.sign_in"}, // a7
			{"u1", "user.disabled"},   // a8
		}
		var all []data.AuditEvent
		for i, ev := range events {
			at := Start.Add(time.Duration(i) * time.Minute)
			if i == 5 {
				at = Start.Add(-time.Hour)
			}
			got, err := e.s.AppendAudit(e.ctx, data.AuditEvent{Action: ev.action, UserID: ev.user, Time: at})
			e.ok(err, "AppendAudit")
			all = append(all, got)
		}
		pick := func(is ...int) []string {
			var out []string
			for _, i := range is {
				out = append(out, auditSeq(all[i]))
			}
			return out
		}
		since := Start.Add(2 * time.Minute) // a2's Time: inclusive
		for _, tc := range []struct {
			name string
			q    data.AuditQuery
			want []string
		}{
			{"action exact", data.AuditQuery{Action: "session.sign_in"}, pick(0, 4, 7)},
			{"action exact is not a prefix", data.AuditQuery{Action: "user"}, pick(6)},
			{"action prefix", data.AuditQuery{Action: "user."}, pick(1, 2, 8)},
			{"action prefix of nothing", data.AuditQuery{Action: "nothing."}, nil},
			{"action unknown", data.AuditQuery{Action: "session.sign"}, nil},
			{"action and user", data.AuditQuery{Action: "user.", UserID: "u1"}, pick(2, 8)},
			{"since", data.AuditQuery{Since: since}, pick(2, 3, 4, 6, 7, 8)},
			{"since after everything", data.AuditQuery{Since: Start.Add(time.Hour)}, nil},
			{"since and user", data.AuditQuery{Since: since, UserID: "u2"}, pick(7)},
			{"since and action", data.AuditQuery{Since: since, Action: "session.sign_in"}, pick(4, 7)},
			{"since in another zone", data.AuditQuery{Since: since.In(time.FixedZone("east", 5*3600))}, pick(2, 3, 4, 6, 7, 8)},
			{"newest", data.AuditQuery{Newest: true}, pick(8, 7, 6, 5, 4, 3, 2, 1, 0)},
			{"newest limit", data.AuditQuery{Newest: true, Limit: 3}, pick(8, 7, 6)},
			{"newest user", data.AuditQuery{Newest: true, UserID: "u2"}, pick(7, 5, 1)},
			{"newest user limit", data.AuditQuery{Newest: true, UserID: "u1", Limit: 2}, pick(8, 6)},
			{"newest action limit", data.AuditQuery{Newest: true, Action: "session.sign_in", Limit: 2}, pick(7, 4)},
			{"newest since limit", data.AuditQuery{Newest: true, Since: since, Limit: 4}, pick(8, 7, 6, 4)},
			{"newest after", data.AuditQuery{Newest: true, AfterSeq: all[5].Seq}, pick(8, 7, 6)},
			{"newest before", data.AuditQuery{Newest: true, BeforeSeq: all[3].Seq}, pick(2, 1, 0)},
			{"newest before limit", data.AuditQuery{Newest: true, BeforeSeq: all[6].Seq, Limit: 2}, pick(5, 4)},
			{"newest between", data.AuditQuery{Newest: true, AfterSeq: all[1].Seq, BeforeSeq: all[5].Seq}, pick(4, 3, 2)},
			{"newest user before", data.AuditQuery{Newest: true, UserID: "u1", BeforeSeq: all[6].Seq}, pick(4, 2, 0)},
			{"newest everything", data.AuditQuery{Newest: true, UserID: "u1", Action: "user.", Since: since,
				AfterSeq: all[0].Seq, BeforeSeq: all[8].Seq + 1, Limit: 1}, pick(8)},
			{"before", data.AuditQuery{BeforeSeq: all[3].Seq}, pick(0, 1, 2)},
			{"before limit keeps the oldest", data.AuditQuery{BeforeSeq: all[3].Seq, Limit: 2}, pick(0, 1)},
			{"between", data.AuditQuery{AfterSeq: all[1].Seq, BeforeSeq: all[5].Seq}, pick(2, 3, 4)},
			{"user between", data.AuditQuery{UserID: "u1", AfterSeq: all[0].Seq, BeforeSeq: all[8].Seq}, pick(2, 4, 6)},
			{"before the first", data.AuditQuery{BeforeSeq: all[0].Seq}, nil},
			{"newest before the first", data.AuditQuery{Newest: true, BeforeSeq: all[0].Seq}, nil},
			{"before 1", data.AuditQuery{BeforeSeq: 1, Newest: true}, nil},
			{"before just after after", data.AuditQuery{AfterSeq: all[2].Seq, BeforeSeq: all[2].Seq + 1}, nil},
			{"before below after", data.AuditQuery{AfterSeq: all[4].Seq, BeforeSeq: all[2].Seq, Newest: true}, nil},
			{"before far beyond", data.AuditQuery{BeforeSeq: all[8].Seq + 1000, Newest: true, Limit: 1}, pick(8)},
		} {
			got, err := e.s.ListAudit(e.ctx, tc.q)
			e.ok(err, "ListAudit "+tc.name)
			e.orderIs(ids(got, auditSeq), tc.want, "ListAudit "+tc.name)
		}
	}},
	{"PageBackwardsUntilEmpty", func(e *env) {
		// 25 events, one in three about u1 and one in five a sign-in:
		// page through each selection newest first, 4 at a time, as
		// arbor audit does, until a page comes back empty.
		var all []data.AuditEvent
		for i := range 25 {
			ev := data.AuditEvent{Action: "worker.used"}
			if i%3 == 0 {
				ev.UserID = "u1"
			}
			if i%5 == 0 {
				ev.Action = "session.sign_in"
			}
			got, err := e.s.AppendAudit(e.ctx, ev)
			e.ok(err, "AppendAudit")
			all = append(all, got)
		}
		for _, tc := range []struct {
			name string
			q    data.AuditQuery
		}{
			{"everything", data.AuditQuery{}},
			{"user", data.AuditQuery{UserID: "u1"}},
			{"action", data.AuditQuery{Action: "session."}},
			{"user and action", data.AuditQuery{UserID: "u1", Action: "session.sign_in"}},
		} {
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				ev := all[i]
				if (tc.q.UserID == "" || ev.UserID == tc.q.UserID) && (tc.q.Action == "" || ev.Action == "session.sign_in") {
					want = append(want, auditSeq(ev))
				}
			}
			var got []string
			q := tc.q
			q.Newest, q.Limit = true, 4
			for pages := 0; ; pages++ {
				if pages > len(all) {
					e.t.Fatalf("%s: still paging after %d pages; BeforeSeq must move back", tc.name, pages)
				}
				page, err := e.s.ListAudit(e.ctx, q)
				e.ok(err, "ListAudit "+tc.name)
				if len(page) > q.Limit {
					e.t.Fatalf("%s: page of %d events, limit %d", tc.name, len(page), q.Limit)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, ids(page, auditSeq)...)
				q.BeforeSeq = page[len(page)-1].Seq
			}
			e.orderIs(got, want, "paging newest first through "+tc.name)
		}
	}},
	{"NewestFindsSparseEvents", func(e *env) {
		// A user with two events far apart in a long trail, and an action
		// that happened once at the start: newest first must reach back
		// past everything else (a backend reading in windows must widen
		// them).
		var mine []data.AuditEvent
		for i := range 600 {
			ev := data.AuditEvent{Action: "session.refresh", UserID: "busy"}
			if i == 3 || i == 450 {
				ev.UserID = "rare"
			}
			if i == 1 {
				ev.Action = "keys.rotated"
			}
			got, err := e.s.AppendAudit(e.ctx, ev)
			e.ok(err, "AppendAudit")
			if ev.UserID == "rare" || ev.Action == "keys.rotated" {
				mine = append(mine, got)
			}
		}
		slices.Reverse(mine)
		for _, tc := range []struct {
			name string
			q    data.AuditQuery
			want []data.AuditEvent
		}{
			{"user", data.AuditQuery{UserID: "rare", Newest: true, Limit: 5}, []data.AuditEvent{mine[0], mine[1]}},
			{"user limit 1 before", data.AuditQuery{UserID: "rare", Newest: true, Limit: 1, BeforeSeq: mine[0].Seq}, []data.AuditEvent{mine[1]}},
			{"action", data.AuditQuery{Action: "keys.rotated", Newest: true, Limit: 1}, []data.AuditEvent{mine[2]}},
			{"action ascending", data.AuditQuery{Action: "keys.", Limit: 1}, []data.AuditEvent{mine[2]}},
		} {
			got, err := e.s.ListAudit(e.ctx, tc.q)
			e.returned(got, err, tc.want, "ListAudit "+tc.name)
		}
		got, err := e.s.ListAudit(e.ctx, data.AuditQuery{Newest: true})
		e.ok(err, "ListAudit newest without a limit")
		if len(got) != 600 || got[0].Seq <= got[599].Seq {
			e.t.Fatalf("ListAudit newest without a limit: %d events; want all 600 (the default limit is 1000), newest first", len(got))
		}
	}},
}
