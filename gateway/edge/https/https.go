// Package https is where Arbor terminates TLS (docs/tls.md): [New] builds a
// [Terminator] that hands the public listener its TLS configuration and
// its certificates, and keeps certificate files fresh. Beside it are the
// two other pieces of an https edge: the Strict-Transport-Security value
// ([HSTS]) and the plain-http listener's handler ([RedirectHandler]).
//
// # Why these settings
//
// TLS 1.2 and 1.3 only, and for 1.2 only the ECDHE suites with an AEAD
// (AES-GCM, ChaCha20-Poly1305): Mozilla's "intermediate" profile without
// its DHE suites (which Go lacks), spoken by every browser of recent years. TLS 1.3's suites are
// not configurable in Go and are all AEAD. ALPN offers http/1.1 only: the
// gateway is fasthttp, which speaks HTTP/1.1 and nothing else, so offering
// h2 would break every browser that took it.
//
// # Certificate files
//
// Files are checked when New runs, with a message that says what to
// change: unreadable, not PEM, key not matching the certificate, a key file
// its group or others can read. They are read again on [Terminator.Reload]
// (SIGHUP) and when their modification time or size changes (polled every
// PollInterval): an outside tool (certbot, a Kubernetes secret, a cron job)
// renews them without a restart. Polling instead of inotify (fsnotify): it
// sees a Kubernetes secret's symlink swap and a certbot renewal the same
// way, costs two stat calls every few seconds, and needs no dependency. A
// reload that fails keeps the certificate being served and logs what is
// wrong; the next change of either file tries again, so a renewal that
// writes the two files one after the other settles by itself.
//
// # Seams for ACME
//
// Options.Certificates replaces the files with another [CertSource] (the
// ACME manager), Options.NextProtos adds its ALPN protocol ("acme-tls/1"
// for TLS-ALPN-01; Go's server refuses a client whose protocols it does not
// list), and RedirectHandler's challenge answers HTTP-01 on the plain
// listener.
//
// # Session tickets
//
// With Options.TicketKeys the session ticket keys come from the store,
// rotated every 12 h and shared by every replica, so that a client resumes
// its session on any of them ([Terminator.SyncTicketKeys], tickets.go).
// Without it, Go's own per-process keys.
//
// # Handshake failures
//
// A failed handshake (port scanners, clients too old for TLS 1.2, plain
// http sent to the https port) is a closed connection, not a request: it
// gets no access-log line and no error page. It is logged, sampled: the
// first at once, then at most one line a minute that counts the others.
// Plain http on the https port gets net/http's answer, a 400 that says so.
package https

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CertSource gives the certificate for a handshake, as
// tls.Config.GetCertificate does. certmagic.Config.GetCertificate
// satisfies it.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// DefaultPollInterval is how often certificate files are checked for a
// change.
const DefaultPollInterval = 5 * time.Second

// Options configure a Terminator. Exactly one certificate source: the
// files or Certificates.
type Options struct {
	// CertFile and KeyFile are a PEM certificate chain (the server's
	// certificate first, then intermediates) and its private key, readable
	// by its owner only (mode 0600 or stricter).
	CertFile, KeyFile string
	// Certificates, if set, gives the certificates instead of files (the
	// ACME manager).
	Certificates CertSource
	// NextProtos are ALPN protocols offered besides http/1.1, e.g.
	// "acme-tls/1" for ACME's TLS-ALPN-01 challenge.
	NextProtos []string
	// PollInterval is how often the files are checked for a change.
	// Default DefaultPollInterval; negative: never (Reload only).
	PollInterval time.Duration
	// Logger receives reloads, their failures and sampled handshake
	// failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the log sampling and of the expiry warnings.
	// Default time.Now.
	Now func() time.Time
	// TicketKeys, if set, is the store that shares the TLS session ticket
	// keys between replicas (tickets.go), sealed with TicketSealer, which
	// is then required. nil: Go's own per-process keys.
	TicketKeys   TicketKeyStore
	TicketSealer Sealer
	// TicketRotation is how often a new session ticket key is made.
	// Default DefaultTicketRotation.
	TicketRotation time.Duration
	// TicketReload is how often the keys are read again from the store.
	// Default DefaultTicketReload; negative: never (SyncTicketKeys only).
	TicketReload time.Duration
}

// Terminator is what a TLS listener needs: a configuration, the current
// certificate, and a watch on certificate files. Build it with New; Close
// stops the watch.
type Terminator struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	config *tls.Config

	cert      atomic.Pointer[tls.Certificate] // files only
	reloadMu  sync.Mutex                      // one reload at a time
	seen      [2]fileStamp                    // the files when last read, under reloadMu
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	failures sampler

	// ticketsDone is closed when the session ticket keys' sync stops.
	ticketsDone chan struct{}
}

// New checks opts, reads the certificate files if those are the source,
// and starts watching them. Its errors say what to change.
func New(opts Options) (*Terminator, error) {
	t := &Terminator{opts: opts, log: opts.Logger, now: opts.Now}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.now == nil {
		t.now = time.Now
	}
	files := opts.CertFile != "" || opts.KeyFile != ""
	switch {
	case files && opts.Certificates != nil:
		return nil, errors.New("https: two certificate sources: certificate files (tls.cert_file) and another source (ACME); choose one")
	case !files && opts.Certificates == nil:
		return nil, errors.New("https: no certificate: set tls.cert_file and tls.key_file, or tls.acme.domains")
	case files && opts.CertFile == "":
		return nil, errors.New("https: tls.key_file is set but tls.cert_file is not: set both")
	case files && opts.KeyFile == "":
		return nil, errors.New("https: tls.cert_file is set but tls.key_file is not: set both")
	case opts.TicketKeys != nil && opts.TicketSealer == nil:
		return nil, errors.New("https: session ticket keys in the store need a sealer (Options.TicketSealer)")
	}
	getCert := opts.Certificates
	if files {
		if err := t.load(); err != nil {
			return nil, err
		}
		getCert = fileSource{t}
	}
	protos := []string{"http/1.1"}
	for _, p := range opts.NextProtos {
		if p != "" && p != "http/1.1" && p != "h2" {
			protos = append(protos, p)
		}
	}
	t.config = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Ignored for TLS 1.3, whose suites are all AEAD.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     protos,
		GetCertificate: getCert.GetCertificate,
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	interval := opts.PollInterval
	if interval == 0 {
		interval = DefaultPollInterval
	}
	if files && interval > 0 {
		go t.watch(interval)
	} else {
		close(t.done)
	}
	t.ticketsDone = make(chan struct{})
	if reload := opts.TicketReload; opts.TicketKeys != nil && reload >= 0 {
		if reload == 0 {
			reload = DefaultTicketReload
		}
		t.syncTicketsOnce()
		go t.syncTickets(reload)
	} else {
		if opts.TicketKeys != nil {
			t.syncTicketsOnce()
		}
		close(t.ticketsDone)
	}
	return t, nil
}

// TLSConfig is the configuration for the https listener. It is shared:
// do not change it.
func (t *Terminator) TLSConfig() *tls.Config { return t.config }

// Reload reads the certificate files again (SIGHUP). On failure the
// certificate being served stays, and the error, also logged, says what
// is wrong. With another source than files it does nothing.
func (t *Terminator) Reload() error {
	if t.opts.Certificates != nil {
		return nil
	}
	return t.reload("reload")
}

// Close stops watching the files and syncing the session ticket keys.
// The TLS configuration keeps working.
func (t *Terminator) Close() {
	t.closeOnce.Do(func() { close(t.stop) })
	<-t.done
	<-t.ticketsDone
}

// Certificate is the certificate served from files (nil with another
// source), for status and tests.
func (t *Terminator) Certificate() *tls.Certificate { return t.cert.Load() }

// fileSource serves the certificate last read from files.
type fileSource struct{ t *Terminator }

func (f fileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.t.cert.Load(), nil
}

// HSTS is the Strict-Transport-Security value (RFC 6797 section 6.1) for
// maxAge and the two opt-in directives; "" (no header) when maxAge is not
// positive. max-age is in whole seconds.
func HSTS(maxAge time.Duration, includeSubDomains, preload bool) string {
	if maxAge <= 0 {
		return ""
	}
	v := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	if includeSubDomains {
		v += "; includeSubDomains"
	}
	if preload {
		v += "; preload"
	}
	return v
}

// Listener serves TLS on ln with the Terminator's configuration. The
// handshake runs on the connection's first read, in the goroutine that
// serves it (as tls.NewListener does), under the server's read timeout; a
// failed one reads as a closed connection and is logged, sampled.
func (t *Terminator) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, t: t}
}

// sampler lets one log line through at once, then at most one per
// interval, counting the others.
type sampler struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const sampleInterval = time.Minute

// allow reports whether to log now and how many were not logged before.
func (s *sampler) allow(now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < sampleInterval {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}
