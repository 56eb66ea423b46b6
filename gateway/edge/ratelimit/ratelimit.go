// Package ratelimit limits, per client address, how often Arbor's own auth
// endpoints may be called and how many failed bearer or worker
// authentications an address may make.
//
// # Why
//
// Every sign-in start, device start and token poll costs Arbor work and,
// for some, a store write; a failed authentication is a guess at a
// credential. Without a limit one client can fill the store or the disk,
// or guess at leisure. A token bucket per address lets a person (or a
// CLI polling every 5 s) through untouched and stops a flood after a small
// burst with 429 rate_limited and a Retry-After saying when to come back.
//
// # How
//
// [New] builds one [Keyed] set of buckets per [Class] from [Options]. The
// wiring then installs it in two places, so that no handler needs to know:
//
//   - [Limits.RouteHandler], a gateway.RouteHook given to Mount with
//     gateway.WithRouteHook: routes in the fixed route table ([Table]) get
//     their class's limiter in front of the handler, and every mounted
//     route gets the failed-authentication check. Requests that end up
//     proxied never run these.
//   - [Limits.Guard] wraps gateway.Options.Guard for the failed
//     authentications of proxied requests (CLI bearer tokens, worker
//     credentials). It costs a request without credentials three header
//     lookups, about 60-100 ns (BenchmarkGuardOverhead).
//
// [Limits.MissingError] fails the start when a Table entry matched no
// registered route, so that renaming a route cannot silently drop its
// limit.
//
// The client address is gateway.ClientIP (the address a trusted proxy
// vouched for in X-Forwarded-For, else the TCP peer), keyed by [Key]: IPv4
// as is, IPv6 by its /64. Memory is bounded by Options.Capacity buckets
// per class whatever the number of addresses (see [Keyed]).
//
// # Failed authentications
//
// A request that carries credentials (Authorization, X-Worker-ID or
// X-Worker-Token) and is answered 401 takes a token from its address's
// failed_auth bucket. Once the bucket is empty, every request from that
// address that carries credentials is answered 429 before they are
// checked, valid ones included, until a token has refilled: otherwise the
// limit would not slow a guesser down, who could still tell a hit (200)
// from a miss (429). Requests without credentials (a browser with a stale
// cookie, an anonymous visitor) never count.
//
// Routes under [GitPrefix] (the Git proxy, whose clients send HTTP Basic
// in Authorization) count in [GitFailedAuth] instead: machines that clone
// (ArgoCD retrying a revoked credential every few minutes) and workers or
// CLIs behind the same address should not use up each other's bucket.
// Its 429 says to check the repository credential, in text/plain for a
// Git client (httperr.GitClient), which shows no other kind of body.
package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/httperr"
)

// Class is a group of endpoints that share one limit per address.
type Class uint8

// The classes. Their names are the config keys under limits.* and the
// values of arbor_rate_limited_total's class label.
const (
	// SignIn is starting a browser sign-in or link, and its callback.
	SignIn Class = iota
	// DeviceStart is starting a CLI or RFC 8628 device login, or entering
	// a user code.
	DeviceStart
	// DevicePoll is polling for the result of a device login.
	DevicePoll
	// Refresh is exchanging a CLI refresh token.
	Refresh
	// FailedAuth is a failed bearer or worker authentication.
	FailedAuth
	// GitFailedAuth is a failed repository credential on the Git proxy
	// (/git/…): its own bucket, so that a deployment's Git clients and its
	// workers or CLIs behind one address do not use up each other's.
	GitFailedAuth

	NumClasses
)

var classNames = [NumClasses]string{"signin", "device_start", "device_poll", "refresh", "failed_auth", "git_failed_auth"}

// String is the class's name: signin, device_start, device_poll, refresh,
// failed_auth or git_failed_auth.
func (c Class) String() string {
	if c >= NumClasses {
		return "unknown"
	}
	return classNames[c]
}

// Rate is one class's limit: PerMinute tokens a minute refill a bucket
// that holds at most Burst. PerMinute 0 means no limit.
type Rate struct {
	PerMinute int
	Burst     int
}

// DefaultCapacity is the default number of addresses remembered per class.
const DefaultCapacity = 16384

// Defaults are the limits for one client address. A person signs in a
// few times a day; a CLI login polls every 5 s for up to 10 minutes.
var Defaults = [NumClasses]Rate{
	SignIn:      {PerMinute: 30, Burst: 10},
	DeviceStart: {PerMinute: 10, Burst: 5},
	DevicePoll:  {PerMinute: 60, Burst: 20},
	Refresh:     {PerMinute: 30, Burst: 10},
	FailedAuth:  {PerMinute: 30, Burst: 10},
	// git asks its credential helper once and gives up on a 401; ArgoCD
	// retries each repository every few minutes.
	GitFailedAuth: {PerMinute: 30, Burst: 10},
}

// Options configure New.
type Options struct {
	// Rates per class. A zero PerMinute disables the class's limit.
	Rates [NumClasses]Rate
	// Capacity is the number of addresses remembered per class.
	// Default DefaultCapacity.
	Capacity int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Limits holds the buckets of every class. Build it with New.
type Limits struct {
	keyed   [NumClasses]*Keyed // nil: no limit
	now     func() time.Time
	limited *prometheus.CounterVec
	counts  [NumClasses]prometheus.Counter
	matched map[string]bool // route table entries seen by Routes
}

// New builds the limiters. It fails on a negative rate or a limited class
// whose burst is below 1.
func New(o Options) (*Limits, error) {
	var errs []error
	for c, r := range o.Rates {
		switch {
		case r.PerMinute < 0:
			errs = append(errs, fmt.Errorf("%s: per_minute %d is negative; use 0 for no limit", Class(c), r.PerMinute))
		case r.PerMinute > 0 && r.Burst < 1:
			errs = append(errs, fmt.Errorf("%s: burst %d must be at least 1 when per_minute is set", Class(c), r.Burst))
		}
	}
	if o.Capacity < 0 {
		errs = append(errs, fmt.Errorf("capacity %d is negative; use 0 for the default %d", o.Capacity, DefaultCapacity))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("rate limits: %w", errors.Join(errs...))
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limits{
		now: o.Now,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_rate_limited_total",
			Help: "Requests answered 429 rate_limited, by limit class (signin, device_start, device_poll, refresh, failed_auth, git_failed_auth).",
		}, []string{"class"}),
		matched: make(map[string]bool),
	}
	for c, r := range o.Rates {
		if r.PerMinute > 0 {
			l.keyed[c] = NewKeyed(r.PerMinute, r.Burst, o.Capacity)
		}
		l.counts[c] = l.limited.WithLabelValues(Class(c).String())
	}
	return l, nil
}

// Register adds arbor_rate_limited_total to reg (the gateway's registry).
func (l *Limits) Register(reg prometheus.Registerer) error {
	if err := reg.Register(l.limited); err != nil {
		return fmt.Errorf("rate limits: registering metrics: %w", err)
	}
	return nil
}

// Keyed returns class's buckets, nil when the class is not limited.
func (l *Limits) Keyed(c Class) *Keyed {
	if c >= NumClasses {
		return nil
	}
	return l.keyed[c]
}

// clientKey is the request's bucket key; ok is false outside a gateway
// request.
func clientKey(c *fiber.Ctx) (k netip.Addr, ok bool) {
	a := gateway.ClientAddr(c)
	if !a.IsValid() {
		return netip.Addr{}, false
	}
	return KeyOf(a), true
}

// take charges class for the request; a non-nil error is the 429.
func (l *Limits) take(c *fiber.Ctx, class Class, k netip.Addr) error {
	kd := l.keyed[class]
	if kd == nil {
		return nil
	}
	if ok, d := kd.Allow(k, l.now()); !ok {
		return l.refuse(c, class, d)
	}
	return nil
}

// refuse counts a 429 and returns it, with Retry-After in whole seconds
// (at least 1), which httperr.Render writes. On the Git proxy it says
// what to check, in text/plain for a Git client, which shows nothing else
// (docs/git-proxy.md, "What git shows").
func (l *Limits) refuse(c *fiber.Ctx, class Class, d time.Duration) error {
	l.counts[class].Inc()
	secs := httperr.RetryAfterSeconds(d)
	msg := fmt.Sprintf("Too many requests from your address; try again in %s", plural(secs, "second"))
	if class == GitFailedAuth {
		msg = fmt.Sprintf("Too many failed Git authentications from your address; check the repository credential (user name: its id, password: its token; docs/git-proxy.md) and try again in %s", plural(secs, "second"))
	}
	e := httperr.New(http.StatusTooManyRequests, httperr.CodeRateLimited, msg).WithRetryAfter(time.Duration(secs) * time.Second)
	e.Plain = class == GitFailedAuth && httperr.GitClient(c)
	return e
}

// hasCredentials reports whether the request carries credentials that a
// failed authentication would be counted against. The keys are in the
// canonical form the server stores them in (Fiber normalizes header
// names), so no lookup copies or normalizes its key: this runs on every
// proxied request.
func hasCredentials(c *fiber.Ctx) bool {
	h := &c.Request().Header
	return len(h.PeekCanonical(keyAuthorization)) > 0 || len(h.PeekCanonical(keyWorkerToken)) > 0 || len(h.PeekCanonical(keyWorkerID)) > 0
}

// The credential headers: CLI bearer tokens, and the worker headers of
// service/workers.
var (
	keyAuthorization = []byte(fiber.HeaderAuthorization)
	keyWorkerID      = []byte("X-Worker-Id")
	keyWorkerToken   = []byte("X-Worker-Token")
)

// checkAuth runs next under the failed-authentication limit of class
// (FailedAuth, or GitFailedAuth on /git/): a request with credentials from
// an address whose bucket is empty gets 429 without next running; one
// answered 401 takes a token, and gets 429 instead if there was none.
func (l *Limits) checkAuth(c *fiber.Ctx, k netip.Addr, class Class, next func() error) error {
	if l.keyed[class] == nil || !hasCredentials(c) {
		return next()
	}
	return l.checkCredentialed(c, k, class, next)
}

// checkCredentialed is checkAuth for a request already known to carry
// credentials (Guard has looked: the headers are not read twice).
func (l *Limits) checkCredentialed(c *fiber.Ctx, k netip.Addr, class Class, next func() error) error {
	kd := l.keyed[class]
	if kd == nil {
		return next()
	}
	now := l.now()
	if empty, d := kd.Empty(k, now); empty {
		return l.refuse(c, class, d)
	}
	err := next()
	if unauthorized(c, err) {
		if ok, d := kd.Allow(k, now); !ok {
			return l.refuse(c, class, d)
		}
	}
	return err
}

// unauthorized reports whether the answer is a 401: the error a handler
// returned, or, without one, the status it wrote.
func unauthorized(c *fiber.Ctx, err error) bool {
	if err != nil {
		return httperr.From(err).Status == http.StatusUnauthorized
	}
	return c.Response().StatusCode() == http.StatusUnauthorized
}

// Guard wraps gateway.Options.Guard with the failed-authentication limit
// for proxied requests. A nil guard, or no failed_auth limit, is returned
// unchanged.
func (l *Limits) Guard(guard func(c *fiber.Ctx) (bool, error)) func(c *fiber.Ctx) (bool, error) {
	if guard == nil || l.keyed[FailedAuth] == nil {
		return guard
	}
	return func(c *fiber.Ctx) (bool, error) {
		if !hasCredentials(c) {
			return guard(c) // the hot path: a cookie or nothing
		}
		k, ok := clientKey(c)
		if !ok {
			return guard(c)
		}
		var pass bool
		err := l.checkCredentialed(c, k, FailedAuth, func() error {
			var err error
			pass, err = guard(c)
			return err
		})
		if err != nil {
			return false, err
		}
		return pass, nil
	}
}

// plural is "1 second", "2 seconds".
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
