// Package webhook delivers Arbor's events — a Git connection made,
// refreshed, failed, disconnected, … — to a URL the operator configures, so
// that the upstream application can react: for example mark the ArgoCD
// applications that are about to lose access to their repository.
//
// Delivery happens on one background goroutine per Notifier. Send only
// puts the event in a bounded in-memory queue and never waits for the
// receiver, because a slow or unreachable receiver must not slow down
// sign-ins and proxied requests. The price is that delivery is best-effort:
//
//   - Events are delivered one at a time, in the order they were sent.
//   - Delivery is at least once. An attempt whose answer is lost (a timeout
//     after the receiver has acted, say) is retried with the same event ID,
//     so a receiver should ignore an X-Arbor-Delivery it has already seen.
//   - An event is dropped, and the drop logged, when the queue is full
//     (Send returns ErrQueueFull), when the receiver refuses it for good (a
//     4xx answer), when every attempt has failed, or when Close runs out of
//     time. The queue is not persisted: events still queued when the process
//     dies are lost.
//
// So treat an event as a prompt to look at the current state again, not as
// the state itself, and reconcile from time to time.
//
// # Retries
//
// A 2xx answer means delivered. 408, 429, any 5xx and network errors
// (including no answer within Options.Timeout) are retried, up to
// Options.MaxAttempts attempts in all, after a backoff of BaseBackoff,
// 2×BaseBackoff, 4×BaseBackoff, … capped at MaxBackoff, each randomised to
// between half and all of its value. With the defaults that is 6 attempts
// spread over about half a minute. A Retry-After header (in seconds or as
// an HTTP date) lengthens the wait to the time it asks for, still capped at
// MaxBackoff. Every other answer, 3xx included (redirects are not
// followed: configure the final URL), fails the event at once; a retry
// would get the same answer. The next event is attempted once the current
// one is delivered or dropped, so an unreachable receiver holds the queue
// up for the whole retry schedule of each event.
//
// # Wire format
//
// Each attempt is a POST whose body is the Event as JSON:
//
//	{"id":"evt_…","type":"connection.disconnected","time":"2026-11-23T10:04:05.123Z",
//	 "user_id":"usr_…","provider":"github","data":{…}}
//
// with these headers:
//
//	Content-Type:      application/json
//	User-Agent:        Arbor-Webhook/1
//	X-Arbor-Event:     connection.disconnected
//	X-Arbor-Delivery:  evt_…   (the event ID, the same on every attempt)
//	X-Arbor-Signature: t=1795428245,v1=5257a869e7…
//
// # Verifying a delivery
//
// The signature follows Stripe's scheme. t is the time of the attempt in
// Unix seconds and v1 the hex-encoded HMAC-SHA256, keyed with the shared
// secret (Options.Secret), of the string t + "." + body. A receiver should:
//
//  1. Read the raw body bytes. Verify them before any JSON parsing: a
//     parsed and re-encoded body will not match.
//  2. Split the header on ",", each part on the first "=", and take t and
//     every v1 (there may be more than one; unknown keys are for later
//     schemes and are ignored).
//  3. Compute HMAC-SHA256(secret, t + "." + body), hex-encode it and compare
//     it with each v1 in constant time (hmac.Equal in Go,
//     hmac.compare_digest in Python, crypto.timingSafeEqual in Node.js).
//     Accept if one matches.
//  4. Reject the delivery if t is further from the receiver's clock than a
//     few minutes (5 is usual). The signature covers t, so this stops a
//     recorded delivery from being replayed later; a retry is signed afresh.
//  5. Answer 2xx quickly and do the slow work afterwards, and skip an
//     X-Arbor-Delivery already processed (see above).
//
// A receiver written in Go can use Verify, which does steps 2 to 4:
//
//	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
//	if err != nil {
//		http.Error(w, "cannot read body", http.StatusBadRequest)
//		return
//	}
//	if err := webhook.Verify(secret, r.Header.Get("X-Arbor-Signature"), body, time.Now(), webhook.DefaultTolerance); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// Neither the secret nor signatures are ever logged. Log records carry the
// event ID, type, attempt number and HTTP status.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 6
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultQueueSize   = 1024
)

// MinSecretLen is the shortest Options.Secret New accepts, in bytes: the
// output size of SHA-256, below which the key is the weak part of the MAC.
const MinSecretLen = 32

// DefaultTolerance is how far the signature timestamp may be from the
// receiver's clock, in either direction, for Verify to accept it.
const DefaultTolerance = 5 * time.Minute

// UserAgent is sent with every delivery.
const UserAgent = "Arbor-Webhook/1"

// Header names of a delivery.
const (
	HeaderEvent     = "X-Arbor-Event"
	HeaderDelivery  = "X-Arbor-Delivery"
	HeaderSignature = "X-Arbor-Signature"
)

// maxTokenLen bounds Event.ID and Event.Type, which are sent as header
// values.
const maxTokenLen = 128

// maxResponseRead is how much of a response body is read (and thrown away)
// so that the connection can be reused; a larger body closes it.
const maxResponseRead = 64 << 10

// Event is one thing that happened, as sent to the receiver.
type Event struct {
	// ID identifies the event, and is the same on every attempt to deliver
	// it. Send sets it to "evt_" and 128 random bits in lower-case base32
	// if it is empty.
	ID string `json:"id"`
	// Type says what happened, e.g. "connection.disconnected". Required.
	Type string `json:"type"`
	// Time is when it happened. Send sets it to Options.Now if it is zero,
	// and converts it to UTC.
	Time     time.Time         `json:"time"`
	UserID   string            `json:"user_id,omitempty"`
	Provider string            `json:"provider,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// Options configures a Notifier. URL and Secret are required; a zero value
// of any other field means its default.
type Options struct {
	// URL is the receiver's http or https URL.
	URL string
	// Secret is the HMAC-SHA256 key shared with the receiver, at least
	// MinSecretLen bytes. New copies it.
	Secret []byte
	// Timeout bounds each attempt, from sending the request to reading the
	// answer. Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts is how many times an event is tried before it is
	// dropped, the first attempt included. Default DefaultMaxAttempts.
	MaxAttempts int
	// BaseBackoff is the wait after the first failed attempt; it doubles
	// after each further one. Default DefaultBaseBackoff.
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between attempts, Retry-After included.
	// Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// QueueSize is how many events may wait for delivery. When the queue
	// is full, Send drops the event and returns ErrQueueFull. Default
	// DefaultQueueSize.
	QueueSize int
	// Client sends the requests. Default: a client with Timeout that does
	// not follow redirects. A client given here is used as it is, redirect
	// policy included; Timeout still bounds each attempt.
	Client *http.Client
	// Logger receives delivery failures (Warn, Error) and deliveries
	// (Debug). Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time, for Event.Time and the signature
	// timestamp. Default time.Now.
	Now func() time.Time
}

// Errors returned by Send and Close.
var (
	// ErrQueueFull is returned by Send when the queue is full: the event
	// was dropped. The receiver is too slow or unreachable.
	ErrQueueFull = errors.New("webhook: queue full, event dropped (the receiver is slow or unreachable)")
	// ErrClosed is returned by Send after Close: the event was dropped.
	ErrClosed = errors.New("webhook: notifier closed, event dropped")
)

// Errors returned by Verify, to be compared with errors.Is.
var (
	// ErrMalformedSignature is returned for a header that is empty, is
	// not a comma-separated list of key=value pairs, or has no single
	// integer t.
	ErrMalformedSignature = errors.New("webhook: malformed signature header")
	// ErrNoSignature is returned for a header without a v1 signature.
	ErrNoSignature = errors.New("webhook: no v1 signature in header")
	// ErrSignatureMismatch is returned when no v1 signature matches the
	// body: wrong secret, or a body or timestamp changed in transit.
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
	// ErrTimestampOutOfRange is returned when the signed timestamp is
	// further from now than the tolerance: a replay, or a clock that is
	// off on one side.
	ErrTimestampOutOfRange = errors.New("webhook: signature timestamp outside tolerance")
)

// Notifier delivers events to one URL, in order, from one goroutine.
type Notifier struct {
	url         string
	secret      []byte
	timeout     time.Duration
	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	client      *http.Client
	log         *slog.Logger
	now         func() time.Time

	// mu guards closed and the close of queue, so that Send never sends
	// on a closed channel.
	mu     sync.RWMutex
	closed bool
	queue  chan delivery

	// stop is cancelled when Close runs out of time; it aborts the attempt
	// in flight and any wait between attempts.
	stop       context.Context
	cancelStop context.CancelFunc
	done       chan struct{}
	// abandoned counts the events not delivered because stop was
	// cancelled. Written by run only; read after done is closed.
	abandoned int
}

// delivery is an event ready to send: the body is encoded by Send, so
// that the caller may reuse Event.Data afterwards.
type delivery struct {
	id, typ string
	body    []byte
}

// outcome is how one event's delivery ended.
type outcome int

const (
	delivered   outcome = iota
	failed              // dropped: refused or out of attempts; logged
	interrupted         // stopped by Close running out of time
)

// New checks opts and starts the delivery goroutine. Call Close to stop it.
func New(opts Options) (*Notifier, error) {
	if opts.URL == "" {
		return nil, errors.New("webhook: Options.URL is empty; set it to the receiver's http or https URL")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		// Not wrapped: url.Error repeats the URL, which may hold a token.
		return nil, errors.New("webhook: Options.URL does not parse as a URL; set it to the receiver's http or https URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("webhook: Options.URL has scheme %q; it must be an http or https URL such as https://app.example.com/hooks/arbor", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("webhook: Options.URL has no host; it must be an absolute URL such as https://app.example.com/hooks/arbor")
	}
	if len(opts.Secret) < MinSecretLen {
		return nil, fmt.Errorf("webhook: Options.Secret is %d bytes; it must be at least %d (for example 32 random bytes from crypto/rand, shared with the receiver)", len(opts.Secret), MinSecretLen)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Timeout", opts.Timeout}, {"BaseBackoff", opts.BaseBackoff}, {"MaxBackoff", opts.MaxBackoff}} {
		if f.d < 0 {
			return nil, fmt.Errorf("webhook: Options.%s is negative (%v); leave it zero for the default", f.name, f.d)
		}
	}
	if opts.MaxAttempts < 0 {
		return nil, fmt.Errorf("webhook: Options.MaxAttempts is negative (%d); leave it zero for the default of %d", opts.MaxAttempts, DefaultMaxAttempts)
	}
	if opts.QueueSize < 0 {
		return nil, fmt.Errorf("webhook: Options.QueueSize is negative (%d); leave it zero for the default of %d", opts.QueueSize, DefaultQueueSize)
	}

	n := &Notifier{
		url:         opts.URL,
		secret:      bytes.Clone(opts.Secret),
		timeout:     orDefault(opts.Timeout, DefaultTimeout),
		maxAttempts: orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		baseBackoff: orDefault(opts.BaseBackoff, DefaultBaseBackoff),
		maxBackoff:  orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		client:      opts.Client,
		log:         opts.Logger,
		now:         opts.Now,
		queue:       make(chan delivery, orDefault(opts.QueueSize, DefaultQueueSize)),
		done:        make(chan struct{}),
	}
	if n.client == nil {
		n.client = &http.Client{
			Timeout: n.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.stop, n.cancelStop = context.WithCancel(context.Background())
	go n.run()
	return n, nil
}

// orDefault returns v, or def if v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Send queues e for delivery and returns at once. It fills in e.ID and
// e.Time if they are empty.
//
// # Errors
//
// ErrQueueFull or ErrClosed when the event was dropped (the drop is also
// logged), or an error naming the Event field that is not valid.
func (n *Notifier) Send(e Event) error {
	if e.ID == "" {
		e.ID = newEventID()
	} else if !validToken(e.ID) {
		return fmt.Errorf("webhook: Event.ID %q is not valid: use up to %d letters, digits, '.', '_' or '-', or leave it empty for a random one", e.ID, maxTokenLen)
	}
	if !validToken(e.Type) {
		return fmt.Errorf("webhook: Event.Type %q is not valid: use up to %d letters, digits, '.', '_' or '-', such as \"connection.disconnected\"", e.Type, maxTokenLen)
	}
	if e.Time.IsZero() {
		e.Time = n.now()
	}
	e.Time = e.Time.UTC()
	body, err := json.Marshal(e)
	if err != nil {
		// Cannot happen with these field types; kept for safety.
		return fmt.Errorf("webhook: encoding event %s: %w", e.ID, err)
	}
	d := delivery{id: e.ID, typ: e.Type, body: body}

	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.log.Warn("webhook: event dropped: notifier closed", slog.String("event_id", d.id), slog.String("event_type", d.typ))
		return ErrClosed
	}
	select {
	case n.queue <- d:
		return nil
	default:
		n.log.Warn("webhook: event dropped: queue full, the receiver is slow or unreachable",
			slog.String("event_id", d.id), slog.String("event_type", d.typ), slog.Int("queue_size", cap(n.queue)))
		return ErrQueueFull
	}
}

// Close stops accepting events and waits until the queued ones are
// delivered or dropped, or until ctx ends. In that case it aborts the
// attempt in flight and drops the rest. Close may be called more than
// once.
//
// # Errors
//
// When events were dropped because ctx ended, an error that says how many
// and wraps ctx.Err().
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()

	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancelStop()
		<-n.done // quick: the attempt in flight and any backoff watch stop
	}
	n.cancelStop() // release the context's resources
	if n.abandoned > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = context.Canceled // an earlier Close ran out of time
		}
		return fmt.Errorf("webhook: Close: %d queued event(s) dropped, not delivered before the context ended (give Close more time, or check the receiver): %w", n.abandoned, cause)
	}
	return nil
}

// run delivers the queued events in order until the queue is closed and
// empty.
func (n *Notifier) run() {
	defer close(n.done)
	for d := range n.queue {
		if n.stop.Err() != nil || n.deliver(d) == interrupted {
			n.abandoned++
		}
	}
	if n.abandoned > 0 {
		n.log.Error("webhook: events dropped at shutdown, not delivered before Close's context ended", slog.Int("dropped", n.abandoned))
	}
}

// deliver tries d up to maxAttempts times.
func (n *Notifier) deliver(d delivery) outcome {
	for attempt := 1; ; attempt++ {
		res := n.attempt(d)
		if n.stop.Err() != nil && !res.ok() {
			return interrupted
		}
		attrs := []any{slog.String("event_id", d.id), slog.String("event_type", d.typ), slog.Int("attempt", attempt)}
		if res.status != 0 {
			attrs = append(attrs, slog.Int("status", res.status))
		}
		if res.err != nil {
			attrs = append(attrs, slog.String("error", res.err.Error()))
		}
		switch {
		case res.ok():
			n.log.Debug("webhook: event delivered", attrs...)
			return delivered
		case !res.retryable():
			n.log.Error("webhook: event dropped: the receiver refused it, not retrying (a 3xx or 4xx answer; check the receiver's URL, secret and logs)", attrs...)
			return failed
		case attempt >= n.maxAttempts:
			n.log.Error("webhook: event dropped: every attempt failed (check that the receiver is up and answers 2xx in time)", attrs...)
			return failed
		}
		wait := n.backoff(attempt, res.retryAfter)
		n.log.Warn("webhook: delivery attempt failed, will retry", append(attrs, slog.Duration("retry_in", wait))...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.stop.Done():
			t.Stop()
			return interrupted
		}
	}
}

// result is how one attempt ended: an HTTP status, or err when there was
// no answer.
type result struct {
	status     int
	err        error
	retryAfter time.Duration // from a Retry-After header; 0 if none
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

func (r result) retryable() bool {
	return r.err != nil || r.status >= 500 || r.status == http.StatusRequestTimeout || r.status == http.StatusTooManyRequests
}

// attempt POSTs d once, freshly signed.
func (n *Notifier) attempt(d delivery) result {
	ctx, cancel := context.WithTimeout(n.stop, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(d.body))
	if err != nil {
		return result{err: errors.New("cannot build the request; check Options.URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEvent, d.typ)
	req.Header.Set(HeaderDelivery, d.id)
	req.Header.Set(HeaderSignature, sign(n.secret, n.now().Unix(), d.body))

	resp, err := n.client.Do(req)
	if err != nil {
		return result{err: describe(ctx, err, n.timeout)}
	}
	defer resp.Body.Close()
	res := result{status: resp.StatusCode}
	if !res.ok() {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), n.now())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	return res
}

// describe turns a client error into one that names the cause without the
// URL, which may carry a token in its query.
func describe(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("no answer within %v (Options.Timeout)", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff returns the wait after the attempt-th failed attempt:
// BaseBackoff doubled attempt-1 times, capped at MaxBackoff, then
// randomised to between half and all of it; then lengthened to retryAfter
// and capped at MaxBackoff again.
func (n *Notifier) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := n.baseBackoff
	for i := 1; i < attempt && d < n.maxBackoff; i++ {
		if d > n.maxBackoff/2 {
			d = n.maxBackoff
			break
		}
		d *= 2
	}
	d = min(d, n.maxBackoff)
	d = d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
	return min(max(d, retryAfter), n.maxBackoff)
}

// parseRetryAfter reads a Retry-After value, in seconds or as an HTTP
// date. It returns 0 if v is empty, invalid or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// newEventID returns "evt_" and 128 random bits in lower-case base32.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return "evt_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// validToken reports whether s can go into a header as an ID or type.
func validToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// sign returns the X-Arbor-Signature value for body at Unix time t.
func sign(secret []byte, t int64, body []byte) string {
	ts := strconv.FormatInt(t, 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// mac returns HMAC-SHA256(secret, ts + "." + body).
func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks an X-Arbor-Signature header against the raw request body:
// that one of its v1 signatures is the HMAC-SHA256 of t + "." + body under
// secret, and that its timestamp t is within tolerance of now (in either
// direction, for clock skew). DefaultTolerance suits most receivers.
//
// # Errors
//
// ErrMalformedSignature, ErrNoSignature, ErrSignatureMismatch or
// ErrTimestampOutOfRange, to be compared with errors.Is; or an error saying
// that secret is empty or tolerance not positive. None of them repeats the
// header.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: Verify: empty secret; pass the secret shared with Arbor")
	}
	if tolerance <= 0 {
		return errors.New("webhook: Verify: tolerance must be positive; use webhook.DefaultTolerance")
	}
	var (
		ts   string
		sigs [][]byte
	)
	if header == "" {
		return ErrMalformedSignature
	}
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrMalformedSignature
			}
			ts = v
		case "v1":
			// A v1 that is not hex cannot match; keep looking.
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			} else {
				sigs = append(sigs, nil)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || t <= 0 || ts[0] == '+' {
		return ErrMalformedSignature
	}
	if len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	match := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	if skew := now.Sub(time.Unix(t, 0)); skew > tolerance || skew < -tolerance {
		return ErrTimestampOutOfRange
	}
	return nil
}
