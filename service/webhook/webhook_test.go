package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/service/webhook"
)

// wait bounds every wait for something asynchronous. It is a guard against
// a hung test, not a timing assertion.
const wait = 10 * time.Second

func newSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// request is one attempt as the receiver saw it.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Event        webhook.Event
	Attempt      int // the how-many-th attempt for this event ID
}

// receiver is a real HTTP server on 127.0.0.1 that records every request
// and answers as respond says (200 if respond is nil).
type receiver struct {
	srv  *httptest.Server
	reqs chan request

	mu       sync.Mutex
	attempts map[string]int
	log      []request
}

type respondFunc func(ctx context.Context, r request) (status int, retryAfter string)

func startReceiver(t *testing.T, respond respondFunc) *receiver {
	t.Helper()
	rc := &receiver{reqs: make(chan request, 1000), attempts: make(map[string]int)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		req := request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		if err := json.Unmarshal(body, &req.Event); err != nil {
			t.Errorf("receiver: body is not an Event: %v: %s", err, body)
		}
		rc.mu.Lock()
		rc.attempts[req.Event.ID]++
		req.Attempt = rc.attempts[req.Event.ID]
		rc.log = append(rc.log, req)
		rc.mu.Unlock()
		rc.reqs <- req
		status, retryAfter := http.StatusOK, ""
		if respond != nil {
			status, retryAfter = respond(r.Context(), req)
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next returns the next request the receiver got.
func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.reqs:
		return r
	case <-time.After(wait):
		t.Fatal("receiver: no request arrived")
		return request{}
	}
}

func (rc *receiver) attemptsFor(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.attempts[id]
}

func (rc *receiver) all() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.log...)
}

// blockUntilReleased returns a respondFunc that holds every request until
// release is closed (or the client gives up), then answers 200.
func blockUntilReleased(release <-chan struct{}) respondFunc {
	return func(ctx context.Context, _ request) (int, string) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return http.StatusOK, ""
	}
}

// logRecord is one record the Notifier logged.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
}

func (r logRecord) String() string { return fmt.Sprintf("%v %s %v", r.Level, r.Msg, r.Attrs) }

// logSink is a slog.Handler that passes every record to a channel.
type logSink struct {
	ch   chan logRecord
	mu   sync.Mutex
	seen []logRecord
}

func newLogSink() *logSink { return &logSink{ch: make(chan logRecord, 4096)} }

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Any()
		return true
	})
	s.mu.Lock()
	s.seen = append(s.seen, rec)
	s.mu.Unlock()
	s.ch <- rec
	return nil
}

// waitFor returns the first record from now on that match accepts.
func (s *logSink) waitFor(t *testing.T, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case r := <-s.ch:
			if match(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("log: no record %s", what)
		}
	}
}

func (s *logSink) records() []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logRecord(nil), s.seen...)
}

// assertNoSecrets fails if any log record holds the secret or a
// signature.
func assertNoSecrets(t *testing.T, logs *logSink, secret []byte, reqs []request) {
	t.Helper()
	needles := []string{hex.EncodeToString(secret), string(secret), "v1="}
	for _, r := range reqs {
		needles = append(needles, r.Header.Get(webhook.HeaderSignature))
	}
	for _, rec := range logs.records() {
		s := rec.String()
		for _, n := range needles {
			if n != "" && strings.Contains(s, n) {
				t.Errorf("log record leaks a secret or signature: %s", s)
			}
		}
	}
}

// newNotifier starts a Notifier for rc with tiny backoffs, and closes it
// when the test ends.
func newNotifier(t *testing.T, url string, secret []byte, logs *logSink, tweak func(*webhook.Options)) *webhook.Notifier {
	t.Helper()
	opts := webhook.Options{
		URL:         url,
		Secret:      secret,
		Timeout:     wait,
		MaxAttempts: 4,
		BaseBackoff: time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		Logger:      slog.New(logs),
	}
	if tweak != nil {
		tweak(&opts)
	}
	n, err := webhook.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

func closeNotifier(t *testing.T, n *webhook.Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// signHeader signs the way the package doc tells receivers to verify,
// written out independently of the package.
func signHeader(secret []byte, t int64, body []byte) string {
	h := hmac.New(sha256.New, secret)
	fmt.Fprintf(h, "%d.", t)
	h.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", t, hex.EncodeToString(h.Sum(nil)))
}

func TestDeliveryIsSignedAndComplete(t *testing.T) {
	secret := newSecret(t)
	rc := startReceiver(t, nil)
	logs := newLogSink()
	now := time.Date(2026, 11, 23, 11, 4, 5, 123_000_000, time.FixedZone("CET", 3600))
	n := newNotifier(t, rc.srv.URL+"/hooks/arbor", secret, logs, func(o *webhook.Options) {
		o.Now = func() time.Time { return now }
	})

	data := map[string]string{"repo": "org/app", "reason": "token revoked"}
	if err := n.Send(webhook.Event{Type: "connection.disconnected", UserID: "usr_abc", Provider: "github", Data: data}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := rc.next(t)

	if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), r.Body, now, webhook.DefaultTolerance); err != nil {
		t.Errorf("Verify of a delivery: %v", err)
	}
	if want := fmt.Sprintf("t=%d,", now.Unix()); !strings.HasPrefix(r.Header.Get(webhook.HeaderSignature), want) {
		t.Errorf("signature header %q does not start with %q", r.Header.Get(webhook.HeaderSignature), want)
	}
	if r.Method != http.MethodPost || r.Path != "/hooks/arbor" {
		t.Errorf("request = %s %s, want POST /hooks/arbor", r.Method, r.Path)
	}
	e := r.Event
	if !strings.HasPrefix(e.ID, "evt_") || len(e.ID) != len("evt_")+26 || strings.ToLower(e.ID) != e.ID {
		t.Errorf("generated ID = %q, want evt_ and 26 lower-case base32 characters", e.ID)
	}
	if e.Type != "connection.disconnected" || e.UserID != "usr_abc" || e.Provider != "github" {
		t.Errorf("event = %+v", e)
	}
	if !e.Time.Equal(now) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", e.Time, now.UTC())
	}
	if fmt.Sprint(e.Data) != fmt.Sprint(data) {
		t.Errorf("Data = %v, want %v", e.Data, data)
	}
	if !strings.Contains(string(r.Body), `"time":"2026-11-23T10:04:05.123Z"`) {
		t.Errorf("body does not carry the time in UTC: %s", r.Body)
	}
	for h, want := range map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "Arbor-Webhook/1",
		webhook.HeaderEvent:     "connection.disconnected",
		webhook.HeaderDelivery:  e.ID,
		webhook.HeaderSignature: r.Header.Get(webhook.HeaderSignature),
	} {
		if got := r.Header.Get(h); got != want || got == "" {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}

	// A caller-chosen ID and time are kept (the time in UTC).
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := n.Send(webhook.Event{ID: "evt_custom-1", Type: "connection.made", Time: at}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r = rc.next(t)
	if r.Event.ID != "evt_custom-1" || r.Header.Get(webhook.HeaderDelivery) != "evt_custom-1" || !r.Event.Time.Equal(at) {
		t.Errorf("second event = %+v, delivery header %q", r.Event, r.Header.Get(webhook.HeaderDelivery))
	}
	closeNotifier(t, n)
	assertNoSecrets(t, logs, secret, rc.all())
}

func TestSendRejectsInvalidEvent(t *testing.T) {
	rc := startReceiver(t, nil)
	n := newNotifier(t, rc.srv.URL, newSecret(t), newLogSink(), nil)
	for _, e := range []webhook.Event{
		{},
		{Type: "has space"},
		{Type: "line\nbreak"},
		{Type: strings.Repeat("a", 129)},
		{Type: "ok", ID: "evt bad"},
	} {
		err := n.Send(e)
		if err == nil || !strings.Contains(err.Error(), "webhook: Event.") {
			t.Errorf("Send(%+v) = %v, want an error naming the Event field", e, err)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := newSecret(t)
	body := []byte(`{"id":"evt_1","type":"connection.refreshed"}`)
	now := time.Unix(1_795_428_245, 0)
	ts := now.Unix()
	good := signHeader(secret, ts, body)
	_, goodSig, _ := strings.Cut(good, ",v1=")

	ok := []struct{ name, header string }{
		{"valid", good},
		{"spaces after commas", strings.Replace(good, ",", ", ", 1)},
		{"rotation: one of several v1 matches", fmt.Sprintf("t=%d,v1=%s,v1=%s", ts, strings.Repeat("ab", 32), goodSig)},
		{"unknown scheme ignored", good + ",v0=deadbeef"},
		{"timestamp at the edge of tolerance", signHeader(secret, ts-300, body)},
	}
	for _, c := range ok {
		if err := webhook.Verify(secret, c.header, body, now, 5*time.Minute); err != nil {
			t.Errorf("%s: Verify = %v, want nil", c.name, err)
		}
	}

	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] = 'X'
	bad := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		want   error
	}{
		{"wrong secret", newSecret(t), good, body, webhook.ErrSignatureMismatch},
		{"tampered body", secret, good, tampered, webhook.ErrSignatureMismatch},
		{"timestamp changed", secret, fmt.Sprintf("t=%d,v1=%s", ts+1, goodSig), body, webhook.ErrSignatureMismatch},
		{"v1 not hex", secret, fmt.Sprintf("t=%d,v1=zz", ts), body, webhook.ErrSignatureMismatch},
		{"old timestamp", secret, signHeader(secret, ts-301, body), body, webhook.ErrTimestampOutOfRange},
		{"future timestamp", secret, signHeader(secret, ts+301, body), body, webhook.ErrTimestampOutOfRange},
		{"empty header", secret, "", body, webhook.ErrMalformedSignature},
		{"garbage", secret, "garbage", body, webhook.ErrMalformedSignature},
		{"no timestamp", secret, "v1=" + goodSig, body, webhook.ErrMalformedSignature},
		{"timestamp not a number", secret, "t=abc,v1=" + goodSig, body, webhook.ErrMalformedSignature},
		{"signed timestamp", secret, "t=+" + strconv.FormatInt(ts, 10) + ",v1=" + goodSig, body, webhook.ErrMalformedSignature},
		{"two timestamps", secret, fmt.Sprintf("t=%d,t=%d,v1=%s", ts, ts, goodSig), body, webhook.ErrMalformedSignature},
		{"empty part", secret, good + ",", body, webhook.ErrMalformedSignature},
		{"missing v1", secret, fmt.Sprintf("t=%d", ts), body, webhook.ErrNoSignature},
		{"only another scheme", secret, fmt.Sprintf("t=%d,v0=%s", ts, goodSig), body, webhook.ErrNoSignature},
	}
	for _, c := range bad {
		err := webhook.Verify(c.secret, c.header, c.body, now, 5*time.Minute)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
		if err != nil && len(c.header) > 10 && strings.Contains(err.Error(), c.header) {
			t.Errorf("%s: error repeats the header: %v", c.name, err)
		}
	}

	if err := webhook.Verify(nil, good, body, now, time.Minute); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("Verify with no secret = %v, want an error about the secret", err)
	}
	if err := webhook.Verify(secret, good, body, now, 0); err == nil || !strings.Contains(err.Error(), "tolerance") {
		t.Errorf("Verify with zero tolerance = %v, want an error about the tolerance", err)
	}
}

func TestRetriesServerErrorThenDelivers(t *testing.T) {
	secret := newSecret(t)
	rc := startReceiver(t, func(_ context.Context, r request) (int, string) {
		if r.Attempt == 1 {
			return http.StatusInternalServerError, ""
		}
		return http.StatusOK, ""
	})
	logs := newLogSink()
	n := newNotifier(t, rc.srv.URL, secret, logs, nil)

	if err := n.Send(webhook.Event{ID: "evt_retry", Type: "connection.refreshed"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	closeNotifier(t, n) // waits for the delivery

	if got := rc.attemptsFor("evt_retry"); got != 2 {
		t.Errorf("receiver saw %d attempts, want 2 (one 500, one 200)", got)
	}
	for _, r := range rc.all() {
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), r.Body, time.Now(), webhook.DefaultTolerance); err != nil {
			t.Errorf("attempt %d: Verify = %v", r.Attempt, err)
		}
	}
	var retries, deliveries int
	for _, rec := range logs.records() {
		switch {
		case rec.Level == slog.LevelWarn && rec.Attrs["event_id"] == "evt_retry":
			retries++
			if rec.Attrs["status"] != int64(500) || rec.Attrs["attempt"] != int64(1) || rec.Attrs["event_type"] != "connection.refreshed" {
				t.Errorf("retry record = %v", rec)
			}
		case rec.Level == slog.LevelDebug && rec.Attrs["event_id"] == "evt_retry":
			deliveries++
			if rec.Attrs["status"] != int64(200) || rec.Attrs["attempt"] != int64(2) {
				t.Errorf("delivery record = %v", rec)
			}
		}
	}
	if retries != 1 || deliveries != 1 {
		t.Errorf("logged %d retries and %d deliveries, want 1 and 1: %v", retries, deliveries, logs.records())
	}
	assertNoSecrets(t, logs, secret, rc.all())
}

func TestRetryAfterIsHonouredUpToMaxBackoff(t *testing.T) {
	rc := startReceiver(t, func(_ context.Context, r request) (int, string) {
		if r.Attempt == 1 {
			return http.StatusTooManyRequests, "1"
		}
		return http.StatusOK, ""
	})
	logs := newLogSink()
	const maxBackoff = 20 * time.Millisecond
	n := newNotifier(t, rc.srv.URL, newSecret(t), logs, func(o *webhook.Options) {
		o.BaseBackoff = time.Millisecond
		o.MaxBackoff = maxBackoff
	})

	if err := n.Send(webhook.Event{ID: "evt_429", Type: "connection.refreshed"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	closeNotifier(t, n)

	if got := rc.attemptsFor("evt_429"); got != 2 {
		t.Errorf("receiver saw %d attempts, want 2", got)
	}
	// Retry-After (1s) outweighs the 1ms backoff and is capped at
	// MaxBackoff: the logged wait shows both.
	rec := logs.waitFor(t, "for the 429 retry", func(r logRecord) bool { return r.Level == slog.LevelWarn })
	if rec.Attrs["status"] != int64(429) || rec.Attrs["retry_in"] != maxBackoff {
		t.Errorf("retry record = %v, want status 429 and retry_in %v", rec, maxBackoff)
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	rc := startReceiver(t, func(_ context.Context, r request) (int, string) {
		if r.Event.Type == "connection.bogus" {
			return http.StatusBadRequest, ""
		}
		return http.StatusOK, ""
	})
	logs := newLogSink()
	n := newNotifier(t, rc.srv.URL, newSecret(t), logs, nil)

	if err := n.Send(webhook.Event{ID: "evt_bad", Type: "connection.bogus"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := n.Send(webhook.Event{ID: "evt_good", Type: "connection.made"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := rc.next(t); r.Event.ID != "evt_bad" {
		t.Fatalf("first request = %s, want evt_bad", r.Event.ID)
	}
	if r := rc.next(t); r.Event.ID != "evt_good" {
		t.Fatalf("second request = %s, want evt_good (evt_bad must not be retried)", r.Event.ID)
	}
	closeNotifier(t, n)
	if got := rc.attemptsFor("evt_bad"); got != 1 {
		t.Errorf("receiver saw %d attempts of the refused event, want 1", got)
	}
	rec := logs.waitFor(t, "for the refused event", func(r logRecord) bool { return r.Attrs["event_id"] == "evt_bad" })
	if rec.Level != slog.LevelError || rec.Attrs["status"] != int64(400) || !strings.Contains(rec.Msg, "not retrying") {
		t.Errorf("refusal record = %v", rec)
	}
}

func TestReceiverDownDropsAfterMaxAttempts(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now: connection refused
	secret := newSecret(t)
	logs := newLogSink()
	const attempts = 3
	n := newNotifier(t, url, secret, logs, func(o *webhook.Options) { o.MaxAttempts = attempts })

	if err := n.Send(webhook.Event{ID: "evt_down", Type: "connection.failed"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i := 1; i < attempts; i++ {
		rec := logs.waitFor(t, "for a retry", func(r logRecord) bool { return r.Attrs["event_id"] == "evt_down" })
		if rec.Level != slog.LevelWarn || rec.Attrs["attempt"] != int64(i) || rec.Attrs["error"] == nil {
			t.Errorf("record %d = %v, want a Warn for attempt %d with an error", i, rec, i)
		}
	}
	rec := logs.waitFor(t, "for the drop", func(r logRecord) bool { return r.Attrs["event_id"] == "evt_down" })
	if rec.Level != slog.LevelError || rec.Attrs["attempt"] != int64(attempts) || !strings.Contains(rec.Msg, "dropped") {
		t.Errorf("last record = %v, want an Error saying the event was dropped after attempt %d", rec, attempts)
	}
	if e, _ := rec.Attrs["error"].(string); strings.Contains(e, url) {
		t.Errorf("error %q repeats the URL", e)
	}
	// The event is done with: Close has nothing left to deliver.
	closeNotifier(t, n)
	assertNoSecrets(t, logs, secret, nil)
}

func TestQueueFull(t *testing.T) {
	release := make(chan struct{})
	rc := startReceiver(t, blockUntilReleased(release))
	logs := newLogSink()
	n := newNotifier(t, rc.srv.URL, newSecret(t), logs, func(o *webhook.Options) { o.QueueSize = 2 })
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the notifier's Close

	if err := n.Send(webhook.Event{ID: "evt_0", Type: "connection.made"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	rc.next(t) // evt_0 is in flight, held by the receiver; the queue is empty

	errs := make(chan []error, 1)
	go func() {
		var got []error
		for i := 1; i <= 4; i++ {
			got = append(got, n.Send(webhook.Event{ID: fmt.Sprintf("evt_%d", i), Type: "connection.made"}))
		}
		errs <- got
	}()
	var got []error
	select {
	case got = <-errs:
	case <-time.After(wait):
		t.Fatal("Send blocked while the queue was full")
	}
	want := []error{nil, nil, webhook.ErrQueueFull, webhook.ErrQueueFull}
	for i := range want {
		if !errors.Is(got[i], want[i]) || (want[i] == nil && got[i] != nil) {
			t.Errorf("Send evt_%d = %v, want %v", i+1, got[i], want[i])
		}
	}
	logs.waitFor(t, "for the queue-full drop", func(r logRecord) bool {
		return r.Level == slog.LevelWarn && r.Attrs["event_id"] == "evt_3" && strings.Contains(r.Msg, "queue full")
	})

	unblock()
	closeNotifier(t, n)
	var ids []string
	for _, r := range rc.all() {
		ids = append(ids, r.Event.ID)
	}
	if fmt.Sprint(ids) != "[evt_0 evt_1 evt_2]" {
		t.Errorf("delivered %v, want [evt_0 evt_1 evt_2]", ids)
	}
}

func TestCloseDeliversQueuedEvents(t *testing.T) {
	release := make(chan struct{})
	rc := startReceiver(t, blockUntilReleased(release))
	n := newNotifier(t, rc.srv.URL, newSecret(t), newLogSink(), nil)

	for i := range 5 {
		if err := n.Send(webhook.Event{ID: fmt.Sprintf("evt_%d", i), Type: "connection.made"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	rc.next(t) // evt_0 held by the receiver, evt_1..4 queued

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		closed <- n.Close(ctx)
	}()
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(2 * wait):
		t.Fatal("Close did not return")
	}
	var ids []string
	for _, r := range rc.all() {
		ids = append(ids, r.Event.ID)
	}
	if fmt.Sprint(ids) != "[evt_0 evt_1 evt_2 evt_3 evt_4]" {
		t.Errorf("delivered %v, want all five in order", ids)
	}
	if err := n.Send(webhook.Event{Type: "connection.made"}); !errors.Is(err, webhook.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestCloseWithExpiredContextReportsDrops(t *testing.T) {
	release := make(chan struct{})
	rc := startReceiver(t, blockUntilReleased(release))
	t.Cleanup(func() { close(release) })
	logs := newLogSink()
	n := newNotifier(t, rc.srv.URL, newSecret(t), logs, nil)

	for i := range 3 {
		if err := n.Send(webhook.Event{ID: fmt.Sprintf("evt_%d", i), Type: "connection.made"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	rc.next(t) // evt_0 held by the receiver, which never answers

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := n.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "3 queued event(s) dropped") {
		t.Errorf("Close error %q does not say that 3 events were dropped", err)
	}
	if err := n.Send(webhook.Event{Type: "connection.made"}); !errors.Is(err, webhook.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	rec := logs.waitFor(t, "for the shutdown drop", func(r logRecord) bool { return r.Level == slog.LevelError })
	if rec.Attrs["dropped"] != int64(3) {
		t.Errorf("shutdown record = %v, want dropped=3", rec)
	}
	if got := len(rc.all()); got != 1 {
		t.Errorf("receiver saw %d requests, want 1 (the aborted one)", got)
	}
}

func TestOrderIsPreserved(t *testing.T) {
	// Every seventh event fails its first attempt, so retries happen in
	// the middle of the stream.
	rc := startReceiver(t, func(_ context.Context, r request) (int, string) {
		seq, _ := strconv.Atoi(r.Event.Data["seq"])
		if seq%7 == 3 && r.Attempt == 1 {
			return http.StatusServiceUnavailable, ""
		}
		return http.StatusNoContent, ""
	})
	n := newNotifier(t, rc.srv.URL, newSecret(t), newLogSink(), nil)
	const count = 50
	for i := range count {
		if err := n.Send(webhook.Event{Type: "connection.refreshed", Data: map[string]string{"seq": strconv.Itoa(i)}}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	closeNotifier(t, n)

	var seqs []int
	for _, r := range rc.all() {
		if r.Attempt > 1 || r.Event.Data["seq"] == "" {
			continue
		}
		seq, _ := strconv.Atoi(r.Event.Data["seq"])
		seqs = append(seqs, seq)
	}
	if len(seqs) != count {
		t.Fatalf("receiver saw %d distinct events, want %d", len(seqs), count)
	}
	for i, s := range seqs {
		if s != i {
			t.Fatalf("event %d arrived in position %d: order %v", s, i, seqs)
		}
	}
	// Retried events were retried before the next event was sent.
	all := rc.all()
	for i := 1; i < len(all); i++ {
		prev, _ := strconv.Atoi(all[i-1].Event.Data["seq"])
		cur, _ := strconv.Atoi(all[i].Event.Data["seq"])
		if cur < prev {
			t.Fatalf("request %d (seq %d) came after seq %d", i, cur, prev)
		}
	}
}

func TestNewValidation(t *testing.T) {
	secret := newSecret(t)
	cases := []struct {
		name string
		opts webhook.Options
		want string
	}{
		{"missing URL", webhook.Options{Secret: secret}, "Options.URL is empty"},
		{"ftp URL", webhook.Options{URL: "ftp://app.example.com/hook", Secret: secret}, `scheme "ftp"; it must be an http or https URL`},
		{"no scheme", webhook.Options{URL: "app.example.com/hook", Secret: secret}, `scheme ""; it must be an http or https URL`},
		{"no host", webhook.Options{URL: "https:///hook", Secret: secret}, "Options.URL has no host"},
		{"unparsable URL", webhook.Options{URL: "http://[::1", Secret: secret}, "Options.URL does not parse"},
		{"short secret", webhook.Options{URL: "https://app.example.com/hook", Secret: secret[:31]}, "Options.Secret is 31 bytes; it must be at least 32"},
		{"no secret", webhook.Options{URL: "https://app.example.com/hook"}, "Options.Secret is 0 bytes; it must be at least 32"},
		{"negative attempts", webhook.Options{URL: "https://app.example.com/hook", Secret: secret, MaxAttempts: -1}, "Options.MaxAttempts is negative"},
		{"negative timeout", webhook.Options{URL: "https://app.example.com/hook", Secret: secret, Timeout: -time.Second}, "Options.Timeout is negative"},
		{"negative queue", webhook.Options{URL: "https://app.example.com/hook", Secret: secret, QueueSize: -1}, "Options.QueueSize is negative"},
	}
	for _, c := range cases {
		n, err := webhook.New(c.opts)
		if err == nil {
			_ = n.Close(context.Background())
			t.Errorf("%s: New succeeded, want an error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error = %q, want it to contain %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), hex.EncodeToString(secret[:8])) {
			t.Errorf("%s: error leaks the secret", c.name)
		}
	}

	n, err := webhook.New(webhook.Options{URL: "https://app.example.com/hook", Secret: secret})
	if err != nil {
		t.Fatalf("New with valid options: %v", err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("Close of an idle notifier: %v", err)
	}
}
