package data

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of Copy and Verify.
var (
	// ErrNotEmpty is returned by Copy, before it writes anything, when the
	// destination already holds records.
	ErrNotEmpty = errors.New("destination store is not empty")
	// ErrMismatch is returned by Copy and Verify when the two stores do not
	// hold the same records; the report lists the differences.
	ErrMismatch = errors.New("stores differ")
)

// Record kinds, as Copy and Verify name them, in the order Copy writes them.
const (
	KindUsers           = "users"
	KindIdentities      = "identities"
	KindSessions        = "sessions"
	KindRefreshFamilies = "refresh families"
	KindWorkers         = "workers"
	KindConnections     = "connections"
	KindAudit           = "audit events"
	KindOAuthStates     = "oauth states"
	KindDeviceCodes     = "device codes"
	KindBlobs           = "blobs"
)

// CopyOptions configures Copy and Verify. The zero value is ready to use.
type CopyOptions struct {
	// Concurrency is how many writes (and per-user reads) are in flight at
	// once. The bbolt store commits concurrent writes together and etcd
	// answers them in parallel, so this is what makes a large copy fast.
	// Default: 8.
	Concurrency int
	// Now is the clock Verify uses to leave out records that expired while
	// it read the two stores (each store hides them by its own clock, so
	// one read may still see a record the other no longer does). It should
	// be the stores' clock. Default: time.Now.
	Now func() time.Time
}

func (o CopyOptions) withDefaults() CopyOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// CopyReport says what Copy copied and what Verify found.
type CopyReport struct {
	// Kinds has one entry per record kind, in the order of the Kind*
	// constants.
	Kinds []KindCount
	// Mismatches lists every record that differs between the stores (empty
	// when they match).
	Mismatches []Mismatch
}

// KindCount counts the records of one kind.
type KindCount struct {
	Kind string
	// Copied is how many records Copy wrote (0 from Verify alone).
	Copied int
	// Source and Destination are how many records each store holds,
	// read back after the copy.
	Source, Destination int
}

// Mismatch is one record that differs between the stores.
type Mismatch struct {
	Kind string
	// Key names the record: its id, or user/provider and the like. Keys
	// that are credentials (session, refresh family and OAuth state ids,
	// device codes) are shown as a fingerprint, "sha256:" and the first 8
	// hex digits of their SHA-256, as they would otherwise end up in logs.
	Key string
	// Problem is "missing from the destination", "only in the
	// destination" or "fields differ: …" (field names, never values).
	Problem string
}

func (m Mismatch) String() string { return m.Kind + " " + m.Key + ": " + m.Problem }

// Copy copies every record of from into to, which must be empty, and then
// verifies the copy with Verify. It is how an operator moves Arbor between
// the bbolt and the etcd backend (`arbor store copy`).
//
// What is copied: users, identities, live sessions, live refresh-token
// families, workers, connections, the whole audit trail, and the live OAuth
// states and device codes (consumed ones included), so that sign-ins in
// flight when the gateway stopped can finish on the new store, and every
// blob (ACME accounts and certificates), so that the new store serves the
// same certificates without ordering them again. Records that
// have expired are not copied: for every method of the source they no
// longer exist.
//
// What is kept: every field. Connection.Version and AuditEvent.Seq, which
// a store assigns itself, are written as they are through Importer, so
// optimistic-concurrency checks and audit cursors (AuditQuery.AfterSeq)
// held by clients stay valid, and the destination's next audit Seq follows
// the source's last. Connection.Sealed is copied byte for byte and never
// opened: Copy needs no key, and the sealed tokens open on the new store
// with the keyring that sealed them (the AAD names the user and provider,
// which do not change). Identity.Grant, sealed under IdentityAAD, is
// copied the same way. Blobs too are copied byte for byte with their
// Modified, sealed ones still sealed (their AAD is their key).
//
// # Notes
//
//   - The gateway must not run on either store while Copy runs: a write
//     to the source after Copy read it would be lost. A bbolt file is
//     locked by the server that holds it, so Copy cannot open it then; an
//     etcd cluster has no such lock, so stop every replica first. A write
//     that slips in anyway shows as a mismatch in the verification.
//   - from must implement Exporter, and to must implement Exporter and
//     Importer (both backends do); this is checked first.
//
// # Errors
//
//   - ErrNotEmpty: to holds records. Checked before anything is written,
//     so the destination is unchanged.
//   - ErrMismatch: the copy finished but Verify found differences, listed
//     in the report.
//   - Any other error (a store failed, ctx ended) leaves a partial copy
//     in to: empty it (remove the bbolt file; `etcdctl del --prefix ROOT`)
//     and run Copy again.
func Copy(ctx context.Context, from, to Store, opts CopyOptions) (CopyReport, error) {
	opts = opts.withDefaults()
	src, ok := from.(Exporter)
	if !ok {
		return CopyReport{}, fmt.Errorf("copy: the source store (%T) cannot list OAuth states and device codes (data.Exporter)", from)
	}
	dstImp, ok := to.(Importer)
	if !ok {
		return CopyReport{}, fmt.Errorf("copy: the destination store (%T) cannot import records with their version and seq (data.Importer)", to)
	}
	if _, ok := to.(Exporter); !ok {
		return CopyReport{}, fmt.Errorf("copy: the destination store (%T) cannot list OAuth states and device codes for verification (data.Exporter)", to)
	}
	if err := checkEmpty(ctx, to); err != nil {
		return CopyReport{}, err
	}

	snap, err := readSnapshot(ctx, from, src, opts.Concurrency)
	if err != nil {
		return CopyReport{}, fmt.Errorf("copy: reading the source: %w", err)
	}
	copied := map[string]int{}
	n := opts.Concurrency
	steps := []struct {
		kind string
		run  func() (int, error)
	}{
		{KindUsers, func() (int, error) { return writeAll(ctx, n, snap.users, userKey, to.CreateUser) }},
		{KindIdentities, func() (int, error) { return writeAll(ctx, n, snap.identities, identityKey, to.CreateIdentity) }},
		{KindSessions, func() (int, error) { return writeAll(ctx, n, snap.sessions, sessionKey, to.CreateSession) }},
		{KindRefreshFamilies, func() (int, error) {
			return writeAll(ctx, n, snap.families, familyKey, to.CreateRefreshFamily)
		}},
		{KindWorkers, func() (int, error) { return writeAll(ctx, n, snap.workers, workerKey, to.CreateWorker) }},
		{KindConnections, func() (int, error) {
			return writeAll(ctx, n, snap.connections, connectionKey, dstImp.ImportConnection)
		}},
		{KindAudit, func() (int, error) { return copyAudit(ctx, from, dstImp) }},
		{KindOAuthStates, func() (int, error) { return writeAll(ctx, n, snap.states, stateKey, to.CreateOAuthState) }},
		{KindDeviceCodes, func() (int, error) { return writeAll(ctx, n, snap.codes, codeKey, to.CreateDeviceCode) }},
		{KindBlobs, func() (int, error) { return copyBlobs(ctx, n, from, dstImp) }},
	}
	for _, st := range steps {
		c, err := st.run()
		if err != nil {
			return CopyReport{}, fmt.Errorf("copy: writing %s (after %d of them; the destination now holds a partial copy: empty it before trying again): %w", st.kind, c, err)
		}
		copied[st.kind] = c
	}

	rep, err := Verify(ctx, from, to, opts)
	for i := range rep.Kinds {
		rep.Kinds[i].Copied = copied[rep.Kinds[i].Kind]
	}
	return rep, err
}

// Verify reads every record of a (the source) and b (the destination) and
// compares them record by record, with every field (Connection.Sealed byte
// for byte, Connection.Version, AuditEvent.Seq). Both must implement
// Exporter. It returns ErrMismatch, with the report listing each
// difference, when they do not hold the same records.
func Verify(ctx context.Context, a, b Store, opts CopyOptions) (CopyReport, error) {
	opts = opts.withDefaults()
	ea, ok := a.(Exporter)
	if !ok {
		return CopyReport{}, fmt.Errorf("verify: the source store (%T) cannot list OAuth states and device codes (data.Exporter)", a)
	}
	eb, ok := b.(Exporter)
	if !ok {
		return CopyReport{}, fmt.Errorf("verify: the destination store (%T) cannot list OAuth states and device codes (data.Exporter)", b)
	}
	sa, err := readSnapshot(ctx, a, ea, opts.Concurrency)
	if err != nil {
		return CopyReport{}, fmt.Errorf("verify: reading the source: %w", err)
	}
	sb, err := readSnapshot(ctx, b, eb, opts.Concurrency)
	if err != nil {
		return CopyReport{}, fmt.Errorf("verify: reading the destination: %w", err)
	}
	// Both reads are over: a record live now was live during both.
	now := opts.Now()
	var rep CopyReport
	compareKind(&rep, KindUsers, false, sa.users, sb.users, userKey, nil, now)
	compareKind(&rep, KindIdentities, false, sa.identities, sb.identities, identityKey, nil, now)
	compareKind(&rep, KindSessions, true, sa.sessions, sb.sessions, sessionKey,
		func(s *Session) time.Time { return s.ExpiresAt }, now)
	compareKind(&rep, KindRefreshFamilies, true, sa.families, sb.families, familyKey,
		func(f *RefreshFamily) time.Time { return f.ExpiresAt }, now)
	compareKind(&rep, KindWorkers, false, sa.workers, sb.workers, workerKey, nil, now)
	compareKind(&rep, KindConnections, false, sa.connections, sb.connections, connectionKey, nil, now)
	if err := compareAudit(ctx, &rep, a, b); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	compareKind(&rep, KindOAuthStates, true, sa.states, sb.states, stateKey,
		func(s *OAuthState) time.Time { return s.ExpiresAt }, now)
	compareKind(&rep, KindDeviceCodes, true, sa.codes, sb.codes, codeKey,
		func(d *DeviceCode) time.Time { return d.ExpiresAt }, now)
	if err := compareBlobs(ctx, &rep, a, b, opts.Concurrency); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if len(rep.Mismatches) > 0 {
		return rep, fmt.Errorf("verify: %d records differ between the stores (first: %s): %w", len(rep.Mismatches), rep.Mismatches[0], ErrMismatch)
	}
	return rep, nil
}

// Record keys, as Mismatch shows them.
func userKey(u *User) string            { return u.ID }
func identityKey(i *Identity) string    { return i.Provider + "/" + i.Subject }
func sessionKey(s *Session) string      { return s.ID }
func familyKey(f *RefreshFamily) string { return f.ID }
func workerKey(w *Worker) string        { return w.ID }
func connectionKey(c *Connection) string {
	return c.UserID + "/" + c.Provider
}
func stateKey(s *OAuthState) string { return s.ID }
func codeKey(d *DeviceCode) string  { return d.Code }

// fingerprint names a secret key without revealing it.
func fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// snapshot is every record of a store but the audit trail, which is read
// page by page instead.
type snapshot struct {
	users       []User
	identities  []Identity
	sessions    []Session
	families    []RefreshFamily
	workers     []Worker
	connections []Connection
	states      []OAuthState
	codes       []DeviceCode
}

func readSnapshot(ctx context.Context, s Store, ex Exporter, concurrency int) (*snapshot, error) {
	var snap snapshot
	var err error
	if snap.users, err = s.ListUsers(ctx); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	type owned struct {
		identities []Identity
		sessions   []Session
		families   []RefreshFamily
		workers    []Worker
	}
	per := make([]owned, len(snap.users))
	err = parallel(ctx, concurrency, len(snap.users), func(ctx context.Context, i int) error {
		id, o := snap.users[i].ID, &per[i]
		var err error
		if o.identities, err = s.ListIdentities(ctx, id); err != nil {
			return fmt.Errorf("listing the identities of user %q: %w", id, err)
		}
		if o.sessions, err = s.ListSessions(ctx, id); err != nil {
			return fmt.Errorf("listing the sessions of user %q: %w", id, err)
		}
		if o.families, err = s.ListRefreshFamilies(ctx, id); err != nil {
			return fmt.Errorf("listing the refresh families of user %q: %w", id, err)
		}
		if o.workers, err = s.ListWorkers(ctx, id); err != nil {
			return fmt.Errorf("listing the workers of user %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, o := range per {
		snap.identities = append(snap.identities, o.identities...)
		snap.sessions = append(snap.sessions, o.sessions...)
		snap.families = append(snap.families, o.families...)
		snap.workers = append(snap.workers, o.workers...)
	}
	if snap.connections, err = s.ListConnections(ctx, ""); err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	if snap.states, err = ex.ListOAuthStates(ctx); err != nil {
		return nil, fmt.Errorf("listing OAuth states: %w", err)
	}
	if snap.codes, err = ex.ListDeviceCodes(ctx); err != nil {
		return nil, fmt.Errorf("listing device codes: %w", err)
	}
	return &snap, nil
}

// checkEmpty returns ErrNotEmpty, saying what it found, unless s holds no
// record. Owned records need a user, so users stand for them.
func checkEmpty(ctx context.Context, s Store) error {
	users, err := s.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	conns, err := s.ListConnections(ctx, "")
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	events, err := s.ListAudit(ctx, AuditQuery{Limit: 1})
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	ex := s.(Exporter)
	states, err := ex.ListOAuthStates(ctx)
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	codes, err := ex.ListDeviceCodes(ctx)
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	blobs, err := s.ListBlobs(ctx, "")
	if err != nil {
		return fmt.Errorf("copy: reading the destination: %w", err)
	}
	var found []string
	for _, c := range []struct {
		n    int
		what string
	}{{len(users), "users"}, {len(conns), "connections"}, {len(events), "audit events"},
		{len(states), "OAuth states"}, {len(codes), "device codes"}, {len(blobs), "blobs"}} {
		if c.n > 0 {
			found = append(found, c.what)
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("copy: the destination holds %s; nothing was written (copy only into an empty store): %w", strings.Join(found, ", "), ErrNotEmpty)
	}
	return nil
}

// writeAll writes every record with write, concurrency at a time, and
// returns how many it wrote.
func writeAll[T any](ctx context.Context, concurrency int, vs []T, key func(*T) string, write func(context.Context, T) error) (int, error) {
	var done atomic.Int64
	err := parallel(ctx, concurrency, len(vs), func(ctx context.Context, i int) error {
		if err := write(ctx, vs[i]); err != nil {
			return err // the stores' messages name the record, secrets left out
		}
		done.Add(1)
		return nil
	})
	return int(done.Load()), err
}

// CheckImportConnection checks c as Importer.ImportConnection requires,
// before a backend stores it: ErrInvalid unless c.Version is at least 1.
// The backend's own checks (those of CreateConnection) come after.
func CheckImportConnection(c Connection) error {
	if c.Version == 0 {
		return fmt.Errorf("connection: import needs a version of at least 1: %w", ErrInvalid)
	}
	return nil
}

// CheckImportAudit checks events as Importer.ImportAudit requires, before
// a backend stores any of them: Seqs non-zero and strictly increasing,
// Time set and Action non-empty, else ErrInvalid. checkKey is the check
// of a key component, applied to every non-empty UserID as
// checkKey("audit event", "user_id", e.UserID); its error is returned as
// it is. Backends pass records.CheckKey (data/internal/records), which
// this package cannot call itself: records imports data.
func CheckImportAudit(events []AuditEvent, checkKey func(what, field, v string) error) error {
	var last uint64
	for _, e := range events {
		switch {
		case e.Seq <= last:
			return fmt.Errorf("audit event: import needs non-zero seqs in increasing order, got %d after %d: %w", e.Seq, last, ErrInvalid)
		case e.Time.IsZero():
			return fmt.Errorf("audit event %d: import needs a time: %w", e.Seq, ErrInvalid)
		case e.Action == "":
			return fmt.Errorf("audit event %d: action is empty: %w", e.Seq, ErrInvalid)
		case e.UserID != "":
			if err := checkKey("audit event", "user_id", e.UserID); err != nil {
				return err
			}
		}
		last = e.Seq
	}
	return nil
}

// auditPage is how many audit events Copy and Verify read at a time.
const auditPage = 500

// copyAudit copies the audit trail a page at a time, keeping every Seq.
func copyAudit(ctx context.Context, from Store, to Importer) (int, error) {
	var n int
	var after uint64
	for {
		page, err := from.ListAudit(ctx, AuditQuery{AfterSeq: after, Limit: auditPage})
		if err != nil {
			return n, fmt.Errorf("reading the source's audit events after seq %d: %w", after, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		if err := to.ImportAudit(ctx, page); err != nil {
			return n, err
		}
		n += len(page)
		after = page[len(page)-1].Seq
	}
}

// compareAudit walks both audit trails in Seq order, a page at a time.
func compareAudit(ctx context.Context, rep *CopyReport, a, b Store) error {
	kc := KindCount{Kind: KindAudit}
	var pa, pb []AuditEvent
	var afterA, afterB uint64
	doneA, doneB := false, false
	next := func(s Store, page *[]AuditEvent, after *uint64, done *bool, which string) error {
		if len(*page) > 0 || *done {
			return nil
		}
		p, err := s.ListAudit(ctx, AuditQuery{AfterSeq: *after, Limit: auditPage})
		if err != nil {
			return fmt.Errorf("reading the %s's audit events after seq %d: %w", which, *after, err)
		}
		if len(p) == 0 {
			*done = true
		} else {
			*after = p[len(p)-1].Seq
		}
		*page = p
		return nil
	}
	for {
		if err := next(a, &pa, &afterA, &doneA, "source"); err != nil {
			return err
		}
		if err := next(b, &pb, &afterB, &doneB, "destination"); err != nil {
			return err
		}
		if len(pa) == 0 && len(pb) == 0 {
			break
		}
		switch {
		case len(pb) == 0 || (len(pa) > 0 && pa[0].Seq < pb[0].Seq):
			kc.Source++
			rep.Mismatches = append(rep.Mismatches, Mismatch{KindAudit, fmt.Sprint(pa[0].Seq), "missing from the destination"})
			pa = pa[1:]
		case len(pa) == 0 || pb[0].Seq < pa[0].Seq:
			kc.Destination++
			rep.Mismatches = append(rep.Mismatches, Mismatch{KindAudit, fmt.Sprint(pb[0].Seq), "only in the destination"})
			pb = pb[1:]
		default:
			kc.Source++
			kc.Destination++
			if d := diffFields(pa[0], pb[0]); len(d) > 0 {
				rep.Mismatches = append(rep.Mismatches, Mismatch{KindAudit, fmt.Sprint(pa[0].Seq), "fields differ: " + strings.Join(d, ", ")})
			}
			pa, pb = pa[1:], pb[1:]
		}
	}
	rep.Kinds = append(rep.Kinds, kc)
	return nil
}

// compareKind compares the records of one kind by key. Records expired by
// now (expires non-nil) are left out of both sides.
func compareKind[T any](rep *CopyReport, kind string, secret bool, a, b []T, key func(*T) string, expires func(*T) time.Time, now time.Time) {
	index := func(vs []T) map[string]*T {
		m := make(map[string]*T, len(vs))
		for i := range vs {
			if expires == nil || now.Before(expires(&vs[i])) {
				m[key(&vs[i])] = &vs[i]
			}
		}
		return m
	}
	ma, mb := index(a), index(b)
	rep.Kinds = append(rep.Kinds, KindCount{Kind: kind, Source: len(ma), Destination: len(mb)})
	keys := make([]string, 0, len(ma)+len(mb))
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		show := k
		if secret {
			show = fingerprint(k)
		}
		va, okA := ma[k]
		vb, okB := mb[k]
		switch {
		case !okB:
			rep.Mismatches = append(rep.Mismatches, Mismatch{kind, show, "missing from the destination"})
		case !okA:
			rep.Mismatches = append(rep.Mismatches, Mismatch{kind, show, "only in the destination"})
		default:
			if d := diffFields(*va, *vb); len(d) > 0 {
				rep.Mismatches = append(rep.Mismatches, Mismatch{kind, show, "fields differ: " + strings.Join(d, ", ")})
			}
		}
	}
}

// diffFields names the fields of two structs of one type that differ.
// Times compare as instants (both stores return UTC; a location is not part
// of the record); everything else, byte slices and maps included, with
// reflect.DeepEqual.
func diffFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if ta, ok := fa.(time.Time); ok {
			if !ta.Equal(fb.(time.Time)) {
				out = append(out, va.Type().Field(i).Name)
			}
			continue
		}
		if !reflect.DeepEqual(fa, fb) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

// parallel calls fn(ctx, i) for every i in [0, n) on at most workers
// goroutines and returns the first error; after one, no new call starts.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return cmp.Or(first, context.Cause(ctx))
}

// copyBlobs copies every blob, concurrency at a time, reading each value
// just before it is written so that at most concurrency values are in
// memory at once.
func copyBlobs(ctx context.Context, concurrency int, from Store, to Importer) (int, error) {
	infos, err := from.ListBlobs(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("listing the source's blobs: %w", err)
	}
	var done atomic.Int64
	err = parallel(ctx, concurrency, len(infos), func(ctx context.Context, i int) error {
		b, err := from.GetBlob(ctx, infos[i].Key)
		if err != nil {
			return fmt.Errorf("reading the source's blob %q: %w", infos[i].Key, err)
		}
		if err := to.ImportBlob(ctx, b); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	return int(done.Load()), err
}

// compareBlobs compares the blobs of a and b by key, and the values and
// Modified of those both hold, reading concurrency pairs at a time.
func compareBlobs(ctx context.Context, rep *CopyReport, a, b Store, concurrency int) error {
	la, err := a.ListBlobs(ctx, "")
	if err != nil {
		return fmt.Errorf("listing the source's blobs: %w", err)
	}
	lb, err := b.ListBlobs(ctx, "")
	if err != nil {
		return fmt.Errorf("listing the destination's blobs: %w", err)
	}
	rep.Kinds = append(rep.Kinds, KindCount{Kind: KindBlobs, Source: len(la), Destination: len(lb)})
	inB := make(map[string]bool, len(lb))
	for _, i := range lb {
		inB[i.Key] = true
	}
	var both []string
	var ms []Mismatch
	for _, i := range la {
		if inB[i.Key] {
			both = append(both, i.Key)
			delete(inB, i.Key)
		} else {
			ms = append(ms, Mismatch{KindBlobs, i.Key, "missing from the destination"})
		}
	}
	for _, i := range lb {
		if inB[i.Key] {
			ms = append(ms, Mismatch{KindBlobs, i.Key, "only in the destination"})
		}
	}
	diffs := make([][]string, len(both))
	err = parallel(ctx, concurrency, len(both), func(ctx context.Context, i int) error {
		va, err := a.GetBlob(ctx, both[i])
		if err != nil {
			return fmt.Errorf("reading the source's blob %q: %w", both[i], err)
		}
		vb, err := b.GetBlob(ctx, both[i])
		if err != nil {
			return fmt.Errorf("reading the destination's blob %q: %w", both[i], err)
		}
		diffs[i] = diffFields(va, vb)
		return nil
	})
	if err != nil {
		return err
	}
	for i, d := range diffs {
		if len(d) > 0 {
			ms = append(ms, Mismatch{KindBlobs, both[i], "fields differ: " + strings.Join(d, ", ")})
		}
	}
	slices.SortFunc(ms, func(x, y Mismatch) int { return cmp.Compare(x.Key, y.Key) })
	rep.Mismatches = append(rep.Mismatches, ms...)
	return nil
}
