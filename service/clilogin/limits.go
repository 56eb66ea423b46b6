package clilogin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/vintner/arbor/data"
)

// Bounds on device flows.
//
// Anyone may start a device flow (/api/auth/cli/start, /oauth/device/code,
// or /cli/login with an unknown device code), and each start is a record
// in the store. Without a bound, one client could grow the store as fast
// as it can send requests. Two caps bound the pending, unapproved requests
// this process created: a global one (MaxPendingDevices) and one per
// client address (MaxPendingPerAddress, the address as resolved through
// server.trusted_proxies). A start past either is refused (a *BusyError,
// answered 503 busy with Retry-After). A slot is taken before the record
// is written and given back when a signed-in user approves or denies the
// request (or it is exchanged), or when the record expires (an unapproved
// record lives FlowTTL plus pendingRetention); a request burned by wrong
// codes keeps its slot until it expires, because burning needs no sign-in. Approved requests hold no slot, so an anonymous
// flood never evicts them or keeps them from completing.
//
// The counts are in memory, per process: replicas sharing an etcd cluster
// each allow the caps, so the cluster-wide bound is replicas × cap. An
// approval on another replica is not heard of here, so the slots in the
// way are checked against the store before a start is refused (toCheck).
// The memory is bounded by the global cap whatever the number of
// addresses: an address is tracked only while it holds a slot.
//
// Polls write nothing: the RFC 8628 interval and slow_down bookkeeping of
// pending device codes is kept here too (pollState), bounded and expiring
// with the codes.

// Defaults of the device flow bounds.
const (
	DefaultMaxPendingDevices    = 10_000
	DefaultMaxPendingPerAddress = 10
	// pendingRetention keeps an unapproved record this long after its flow
	// expired, so that a late poll is told expired_token (or
	// expired_device_code), not "unknown". Its slot is held as long.
	pendingRetention = time.Minute
	// maxRetryAfter bounds the Retry-After of a busy answer: approvals free
	// slots at any time, so a client should not be told to wait longer.
	maxRetryAfter = 60 * time.Second
)

type slot struct {
	addr    string
	expires time.Time
	// stored: the record was written (until then, the store does not know
	// the code, and a check must not take that for "gone").
	stored bool
}

type queued struct {
	code    string
	expires time.Time
}

// pendingSlots counts the pending, unapproved device requests.
type pendingSlots struct {
	mu         sync.Mutex
	max        int
	maxPerAddr int
	slots      map[string]slot      // device code → its slot
	perAddr    map[string][]queued  // address → its slots (at most maxPerAddr)
	fifo       []queued             // slots in the order taken (expiry order), with stale entries
	head       int                  // fifo[head:] is live
	checked    map[string]time.Time // address → when its slots were last checked against the store
	checkedAll time.Time            // when all slots were last checked
	checking   bool                 // a check of all slots is running
	polls      map[string]pollState // device code → last poll
	pollSweep  time.Time            // when polls was last swept of expired entries
	maxPolls   int
}

func newPendingSlots(max, maxPerAddr int) *pendingSlots {
	return &pendingSlots{
		max: max, maxPerAddr: maxPerAddr,
		slots: map[string]slot{}, perAddr: map[string][]queued{}, checked: map[string]time.Time{}, polls: map[string]pollState{},
		// Polls are tracked for pending codes only; codes created by other
		// replicas can be polled here too, hence the margin.
		maxPolls: 2*max + 1024,
	}
}

// BusyError refuses a device start past a cap on pending requests
// (Global: the cap of all requests; otherwise the cap of the caller's
// address). RetryAfter is when a slot frees at the latest, at most a
// minute: approvals free slots at any time.
type BusyError struct {
	Global     bool
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	if e.Global {
		return "clilogin: too many device login requests are pending; try again in a moment"
	}
	return "clilogin: too many device login requests are pending from this address; finish or wait for one of them"
}

// expire drops the slots that expired by now. The caller holds mu.
func (p *pendingSlots) expire(now time.Time) {
	for p.head < len(p.fifo) {
		q := p.fifo[p.head]
		if s, ok := p.slots[q.code]; ok && s.expires.Equal(q.expires) {
			if now.Before(q.expires) {
				break
			}
			p.drop(q.code, s)
		}
		p.fifo[p.head] = queued{}
		p.head++
	}
	// Compact: released slots leave stale entries behind.
	if p.head > 0 && (p.head == len(p.fifo) || len(p.fifo)-p.head < p.head) {
		n := copy(p.fifo, p.fifo[p.head:])
		clear(p.fifo[n:])
		p.fifo, p.head = p.fifo[:n], 0
	}
	if len(p.fifo) > 2*len(p.slots)+64 {
		// Keep the live entries of fifo[head:], in order, at the front;
		// the queue then starts at 0 again.
		live := p.fifo[:0]
		for _, q := range p.fifo[p.head:] {
			if s, ok := p.slots[q.code]; ok && s.expires.Equal(q.expires) {
				live = append(live, q)
			}
		}
		clear(p.fifo[len(live):])
		p.fifo, p.head = live, 0
	}
}

// drop removes a slot. The caller holds mu.
func (p *pendingSlots) drop(code string, s slot) {
	delete(p.slots, code)
	delete(p.polls, code)
	list := p.perAddr[s.addr]
	for i, q := range list {
		if q.code == code {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.perAddr, s.addr)
		delete(p.checked, s.addr)
	} else {
		p.perAddr[s.addr] = list
	}
}

// take reserves a slot for a new device code from addr, held until expires
// unless released. It returns a *BusyError when a cap is reached, and
// took=false without an error when code holds a slot already (the store
// will refuse the duplicate; the caller must not release that slot).
func (p *pendingSlots) take(code, addr string, now, expires time.Time) (took bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if _, ok := p.slots[code]; ok {
		return false, nil
	}
	if list := p.perAddr[addr]; len(list) >= p.maxPerAddr {
		oldest := list[0].expires
		for _, q := range list[1:] {
			if q.expires.Before(oldest) {
				oldest = q.expires
			}
		}
		return false, &BusyError{RetryAfter: min(oldest.Sub(now), maxRetryAfter)}
	}
	if len(p.slots) >= p.max {
		wait := maxRetryAfter
		if p.head < len(p.fifo) {
			wait = min(p.fifo[p.head].expires.Sub(now), maxRetryAfter)
		}
		return false, &BusyError{Global: true, RetryAfter: wait}
	}
	// The caller's strings may point into request buffers that are
	// reused (Fiber's do): copy what outlives the request.
	code, addr = strings.Clone(code), strings.Clone(addr)
	p.slots[code] = slot{addr: addr, expires: expires}
	p.perAddr[addr] = append(p.perAddr[addr], queued{code: code, expires: expires})
	p.fifo = append(p.fifo, queued{code: code, expires: expires})
	return true, nil
}

// release gives a slot back: the request was approved, denied or never
// stored. Releasing a code without a slot (created by another replica, or
// released already) does nothing.
func (p *pendingSlots) release(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.slots[code]; ok {
		p.drop(code, s)
	}
	delete(p.polls, code)
}

// counts reports the slots held, in all and by addr (for tests).
func (p *pendingSlots) counts(addr string, now time.Time) (total, byAddr int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	return len(p.slots), len(p.perAddr[addr])
}

// Checking slots against the store. Another replica may have approved or
// denied a request this one counts (behind a load balancer, the approval
// rarely reaches the replica that took the start), and only the store
// knows. So before refusing a start, the slots in the way are checked:
// those of the address at once (at most maxPerAddr reads, at most once per
// checkEvery per address), all of them in the background (at most once per
// checkAllEvery). A slot whose record is not written yet is left alone.
const (
	checkEvery    = time.Second
	checkAllEvery = 30 * time.Second
)

// stored marks the slot of code as written to the store.
func (p *pendingSlots) stored(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.slots[code]; ok {
		s.stored = true
		// A map assignment stores the key it is given, even over an
		// equal one: never a string from a request buffer.
		p.slots[strings.Clone(code)] = s
	}
}

// toCheck returns the codes to check before refusing a start from addr,
// or nil if they were checked recently. The caller checks them, releases
// the finished ones and tries to take a slot again.
func (p *pendingSlots) toCheck(addr string, now time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.checked[addr]) < checkEvery {
		return nil
	}
	var out []string
	for _, q := range p.perAddr[addr] {
		if p.slots[q.code].stored {
			out = append(out, q.code)
		}
	}
	if len(out) > 0 {
		p.checked[addr] = now
	}
	return out
}

// toCheckAll is toCheck for every slot; it returns nil while a check runs
// or if one ran recently. The caller must call checkedAllDone.
func (p *pendingSlots) toCheckAll(now time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.checking || now.Sub(p.checkedAll) < checkAllEvery {
		return nil
	}
	var out []string
	for code, s := range p.slots {
		if s.stored {
			out = append(out, code)
		}
	}
	if len(out) > 0 {
		p.checking, p.checkedAll = true, now
	}
	return out
}

func (p *pendingSlots) checkedAllDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checking = false
}

// pollState is the RFC 8628 polling bookkeeping of one pending device code.
type pollState struct {
	last     time.Time
	interval int // seconds
	expires  time.Time
}

// poll records a poll of a pending device code at now and reports whether
// it came sooner than the code's interval (slow_down; the interval then
// grows by 5 s, RFC 8628 section 3.5). Nothing is written to the store.
// When the table is full of live entries the poll is not recorded: it is
// answered authorization_pending, which costs the server nothing either.
func (p *pendingSlots) poll(code string, now, expires time.Time) (slowDown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.polls[code]
	if !ok {
		if len(p.polls) >= p.maxPolls || now.Sub(p.pollSweep) > time.Minute {
			p.pollSweep = now
			for k, v := range p.polls {
				if !now.Before(v.expires) {
					delete(p.polls, k)
				}
			}
			if len(p.polls) >= p.maxPolls {
				return false
			}
		}
		p.polls[strings.Clone(code)] = pollState{last: now, interval: DefaultInterval, expires: expires}
		return false
	}
	fast := now.Sub(st.last) < time.Duration(st.interval)*time.Second
	st.last = now
	if fast {
		st.interval += 5
	}
	p.polls[strings.Clone(code)] = st // see stored
	return fast
}

// takeSlot takes a pending slot for a new device code from addr,
// checking the slots in the way against the store before refusing (see
// toCheck).
func (s *Service) takeSlot(ctx context.Context, addr, code string, now, expires time.Time) (took bool, err error) {
	took, err = s.pending.take(code, addr, now, expires)
	var be *BusyError
	if !errors.As(err, &be) {
		return took, err
	}
	if be.Global {
		if codes := s.pending.toCheckAll(now); codes != nil {
			go func() {
				defer s.pending.checkedAllDone()
				ctx, cancel := context.WithTimeout(context.Background(), checkAllEvery)
				defer cancel()
				s.releaseFinished(ctx, codes)
			}()
		}
		return false, err
	}
	if codes := s.pending.toCheck(addr, now); codes == nil || s.releaseFinished(ctx, codes) == 0 {
		return false, err
	}
	return s.pending.take(code, addr, now, expires)
}

// releaseFinished releases the slots of the codes whose request is no
// longer pending in the store (approved, denied, exchanged, or gone), and
// returns how many it released. A burned request keeps its slot.
func (s *Service) releaseFinished(ctx context.Context, codes []string) int {
	n := 0
	for _, code := range codes {
		if ctx.Err() != nil {
			break
		}
		d, err := s.store.GetDeviceCode(ctx, code)
		switch {
		case errors.Is(err, data.ErrNotFound):
		case err != nil:
			// The store is failing (an etcd without quorum answers
			// each read only at its timeout): asking about the next
			// code would cost another timeout, so stop here.
			return n
		case d.ConsumedAt.IsZero() && (d.State == data.DevicePending || d.State == data.DeviceBurned):
			continue
		}
		s.pending.release(code)
		n++
	}
	return n
}

// PendingSlots reports the pending-request slots held now, in all and by
// the address addr (for monitoring and tests).
func (s *Service) PendingSlots(addr string) (total, byAddr int) {
	return s.pending.counts(addr, s.opts.Now())
}
