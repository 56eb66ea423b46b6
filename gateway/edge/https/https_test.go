package https_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/edge/https"
	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// logBuffer is a log sink many goroutines write.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clock is a test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is a Terminator over certificate files from a test CA, serving
// "hello" over net/http on 127.0.0.1.
type fixture struct {
	ca                *httpstest.CA
	certFile, keyFile string
	term              *https.Terminator
	addr              string
	logs              *logBuffer
	clock             *clock
}

func start(t *testing.T, edit func(*https.Options)) *fixture {
	t.Helper()
	f := &fixture{ca: httpstest.NewCA(t), logs: &logBuffer{}, clock: newClock()}
	f.certFile, f.keyFile = f.ca.Issue(t).Files(t, t.TempDir())
	opts := https.Options{
		CertFile: f.certFile, KeyFile: f.keyFile,
		PollInterval: 20 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:          f.clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	term, err := https.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(term.Close)
	f.term = term
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(term.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return f
}

// dial handshakes with cfg (trusting the CA unless cfg says otherwise).
func (f *fixture) dial(cfg *tls.Config) (*tls.Conn, error) {
	if cfg.RootCAs == nil {
		cfg.RootCAs = f.ca.Pool()
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.addr, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// served is the serial number of the certificate the server presents.
func (f *fixture) served(t *testing.T) string {
	t.Helper()
	c, err := f.dial(&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// get fetches / over https and returns the body.
func (f *fixture) get(t *testing.T) string {
	t.Helper()
	res, err := f.ca.Client().Get("https://" + f.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestServesHTTPSWithModernSettingsOnly(t *testing.T) {
	f := start(t, func(o *https.Options) { o.NextProtos = []string{"acme-tls/1"} })
	if got := f.get(t); got != "hello" {
		t.Fatalf("GET over https = %q", got)
	}
	cases := []struct {
		name    string
		cfg     *tls.Config
		refused bool
		proto   string
		version uint16
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, false, "", tls.VersionTLS13},
		{"TLS 1.2 AEAD", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, false, "", tls.VersionTLS12},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, true, "", 0},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, true, "", 0},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, true, "", 0},
		{"h2 and http/1.1 offered", &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, false, "http/1.1", tls.VersionTLS13},
		{"h2 only", &tls.Config{NextProtos: []string{"h2"}}, true, "", 0},
		{"acme-tls/1 (NextProtos)", &tls.Config{NextProtos: []string{"acme-tls/1"}}, false, "acme-tls/1", tls.VersionTLS13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := f.dial(c.cfg)
			if c.refused {
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded; want it refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if st.NegotiatedProtocol != c.proto || st.Version != c.version {
				t.Fatalf("negotiated %q over %s; want %q over %s", st.NegotiatedProtocol, tls.VersionName(st.Version), c.proto, tls.VersionName(c.version))
			}
		})
	}
	protos := f.term.TLSConfig().NextProtos
	if len(protos) != 2 || protos[0] != "http/1.1" || protos[1] != "acme-tls/1" {
		t.Fatalf("NextProtos = %q", protos)
	}
}

func TestBadCertificateFiles(t *testing.T) {
	ca := httpstest.NewCA(t)
	dir := t.TempDir()
	good := ca.Issue(t)
	other := ca.Issue(t)
	path := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		httpstest.WriteFile(t, p, data, mode)
		return p
	}
	cert := path("cert.pem", good.CertPEM, 0o644)
	key := path("key.pem", good.KeyPEM, 0o600)
	keyDir := filepath.Join(dir, "keydir")
	if err := os.Mkdir(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		cert, key string
		want      []string
	}{
		{"missing certificate", filepath.Join(dir, "nope.pem"), key, []string{"tls.cert_file", "nope.pem", "no such file", "check the path"}},
		{"unreadable key (a directory)", cert, keyDir, []string{"tls.key_file", "keydir", "is a directory", "make the file readable"}},
		{"certificate not PEM", path("der.pem", good.Leaf.Raw, 0o644), key, []string{`tls.cert_file`, "der.pem", "is not PEM", "BEGIN CERTIFICATE"}},
		{"files swapped", path("k-as-cert.pem", good.KeyPEM, 0o600), path("c-as-key.pem", good.CertPEM, 0o600), []string{"tls.cert_file", "holds PRIVATE KEY, not a certificate", "swapped"}},
		{"key not PEM", cert, path("garbage.key", []byte("not a key"), 0o600), []string{"tls.key_file", "garbage.key", "is not PEM"}},
		{"mismatched key", cert, path("other.key", other.KeyPEM, 0o600), []string{"tls.key_file", "other.key", "is not the private key of the certificate", "cert.pem"}},
		{"key mode 0644", cert, path("open.key", good.KeyPEM, 0o644), []string{"tls.key_file", "open.key", "mode 0644", "chmod 600"}},
		{"key mode 0640", cert, path("group.key", good.KeyPEM, 0o640), []string{"mode 0640", "group or others"}},
	}
	if os.Geteuid() != 0 { // root reads any file
		cases = append(cases, struct {
			name      string
			cert, key string
			want      []string
		}{"unreadable certificate (mode 0000)", path("locked.pem", good.CertPEM, 0), key, []string{"tls.cert_file", "permission denied", "make the file readable"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			term, err := https.New(https.Options{CertFile: c.cert, KeyFile: c.key, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				term.Close()
				t.Fatal("New accepted the files")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// The good pair, for contrast: the table's failures are the files'.
	term, err := https.New(https.Options{CertFile: cert, KeyFile: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("the good pair: %v", err)
	}
	term.Close()
}

func TestCertificateSourceChoice(t *testing.T) {
	for _, c := range []struct {
		name string
		opts https.Options
		want string
	}{
		{"none", https.Options{}, "no certificate"},
		{"both", https.Options{CertFile: "c", KeyFile: "k", Certificates: staticSource{}}, "choose one"},
		{"cert without key", https.Options{CertFile: "c"}, "tls.key_file is not"},
		{"key without cert", https.Options{KeyFile: "k"}, "tls.cert_file is not"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := https.New(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v; want an error saying %q", err, c.want)
			}
		})
	}
}

// staticSource is another certificate source, as ACME would be.
type staticSource struct{ cert *tls.Certificate }

func (s staticSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

func TestAnotherCertificateSource(t *testing.T) {
	ca := httpstest.NewCA(t)
	p := ca.Issue(t)
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, func(o *https.Options) {
		o.CertFile, o.KeyFile = "", ""
		o.Certificates = staticSource{&cert}
	})
	f.ca = ca
	if got := f.served(t); got != p.Leaf.SerialNumber.String() {
		t.Fatalf("served %s; want the source's %s", got, p.Leaf.SerialNumber)
	}
	if err := f.term.Reload(); err != nil {
		t.Fatalf("Reload with another source: %v", err)
	}
}

// waitServed waits, a bounded time, until the server presents serial.
func (f *fixture) waitServed(t *testing.T, serial string) {
	t.Helper()
	for range 500 { // 10 s; the poll is every 20 ms
		if f.served(t) == serial {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("still serving %s, not %s\n%s", f.served(t), serial, f.logs.String())
}

func TestReloadOnFileChange(t *testing.T) {
	f := start(t, nil)
	first := f.served(t)
	next := f.ca.Issue(t)
	next.Write(t, f.certFile, f.keyFile)
	f.waitServed(t, next.Leaf.SerialNumber.String())
	if first == next.Leaf.SerialNumber.String() {
		t.Fatal("the two certificates have one serial")
	}
	if !strings.Contains(f.logs.String(), "certificate reloaded") || !strings.Contains(f.logs.String(), "trigger=\"file change\"") {
		t.Fatalf("no reload logged:\n%s", f.logs.String())
	}
	if f.get(t) != "hello" {
		t.Fatal("the reloaded certificate does not serve")
	}
}

func TestReloadOnRequest(t *testing.T) {
	f := start(t, func(o *https.Options) { o.PollInterval = -1 })
	next := f.ca.Issue(t)
	next.Write(t, f.certFile, f.keyFile)
	if err := f.term.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := f.served(t); got != next.Leaf.SerialNumber.String() {
		t.Fatalf("after Reload served %s; want %s", got, next.Leaf.SerialNumber)
	}
}

// A renewal that leaves broken files keeps the certificate being served,
// says what is wrong, and is picked up once the files are right.
func TestBrokenReloadKeepsServing(t *testing.T) {
	f := start(t, nil)
	first := f.served(t)

	// Through Reload (SIGHUP): a certificate file that is not PEM.
	httpstest.WriteFile(t, f.certFile, []byte("half-written"), 0o644)
	err := f.term.Reload()
	if err == nil || !strings.Contains(err.Error(), "is not PEM") {
		t.Fatalf("Reload of a broken file = %v", err)
	}
	if got := f.served(t); got != first {
		t.Fatalf("serving %s after a failed reload; want the previous %s", got, first)
	}

	// Through the watch: a key that does not match.
	next, other := f.ca.Issue(t), f.ca.Issue(t)
	httpstest.WriteFile(t, f.certFile, next.CertPEM, 0o644)
	httpstest.WriteFile(t, f.keyFile, other.KeyPEM, 0o600)
	for i := 0; !strings.Contains(f.logs.String(), "is not the private key"); i++ {
		if i == 500 {
			t.Fatalf("the watch did not report the mismatch:\n%s", f.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.served(t); got != first {
		t.Fatalf("serving %s after a failed reload; want the previous %s", got, first)
	}
	if f.get(t) != "hello" {
		t.Fatal("the kept certificate does not serve")
	}
	if !strings.Contains(f.logs.String(), "still serving the previous certificate") {
		t.Fatalf("the failure does not say the old certificate stays:\n%s", f.logs.String())
	}

	// The key arrives: the next poll takes the pair.
	httpstest.WriteFile(t, f.keyFile, next.KeyPEM, 0o600)
	f.waitServed(t, next.Leaf.SerialNumber.String())
}

// Plain http on the https port gets a 400 that says so; failed handshakes
// are logged once, then at most once a minute with a count.
func TestHandshakeFailuresAreSampled(t *testing.T) {
	f := start(t, nil)
	plain := func() string {
		c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("plain http on the https port: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.Status + " " + string(b)
	}
	count := func() int { return strings.Count(f.logs.String(), "TLS handshake failed") }
	waitLogged := func(n int) {
		for i := 0; count() < n; i++ {
			if i == 500 {
				t.Fatalf("%d lines logged, want %d:\n%s", count(), n, f.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Handshakes that fail: TLS 1.1.
	for range 3 {
		if c, err := f.dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			c.Close()
			t.Fatal("TLS 1.1 accepted")
		}
	}
	waitLogged(1)
	// The server counts a failed handshake after the client has its
	// error: wait for the other two before going on.
	for i := 0; https.NotLogged(f.term) < 2; i++ {
		if i == 500 {
			t.Fatalf("the server counted %d of the 2 later TLS 1.1 failures", https.NotLogged(f.term))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A client that connects and leaves is not a failure worth a line.
	if c, err := net.Dial("tcp", f.addr); err == nil {
		c.Close()
	}
	// Plain http: counted before the answer is written.
	for i := range 5 {
		if got := plain(); !strings.HasPrefix(got, "400") || !strings.Contains(got, "HTTP request to an HTTPS server") {
			t.Fatalf("answer %d = %q", i, got)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d lines for 8 failures within a minute, want 1:\n%s", n, f.logs.String())
	}
	f.clock.Advance(time.Minute)
	plain()
	waitLogged(2)
	logs := f.logs.String()
	if !strings.Contains(logs, `reason="plain http on the https port"`) || !strings.Contains(logs, "not_logged_since_last=7") {
		t.Fatalf("the second line does not say plain http and count the 7 not logged:\n%s", logs)
	}
	if !strings.Contains(logs, "unsupported versions") {
		t.Fatalf("the first line does not say why the handshake failed:\n%s", logs)
	}
}

func TestHSTS(t *testing.T) {
	for _, c := range []struct {
		maxAge          time.Duration
		subdomains, pre bool
		want            string
	}{
		{0, true, true, ""},
		{-time.Second, false, false, ""},
		{365 * 24 * time.Hour, false, false, "max-age=31536000"},
		{90 * time.Second, true, false, "max-age=90; includeSubDomains"},
		{2 * 365 * 24 * time.Hour, true, true, "max-age=63072000; includeSubDomains; preload"},
	} {
		if got := https.HSTS(c.maxAge, c.subdomains, c.pre); got != c.want {
			t.Errorf("HSTS(%v, %v, %v) = %q; want %q", c.maxAge, c.subdomains, c.pre, got, c.want)
		}
	}
}

// The expiry of the certificate is logged, and an expired one warned about.
func TestExpiredCertificateWarns(t *testing.T) {
	f := start(t, nil)
	if !strings.Contains(f.logs.String(), "certificate loaded") || !strings.Contains(f.logs.String(), "not_after=") {
		t.Fatalf("no load line:\n%s", f.logs.String())
	}
	f.clock.Advance(48 * time.Hour) // the test certificates live a day
	if err := f.term.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs.String(), "the certificate has expired") {
		t.Fatalf("no expiry warning:\n%s", f.logs.String())
	}
}
