package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/edgetest"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/httperr"
)

// The slow clients come from 127.0.0.2 (Linux routes all of 127/8 to the
// loopback interface), the well-behaved client from 127.0.0.1: two
// addresses, as two clients on the internet would be.
const slowAddr = "127.0.0.2"

// dialFrom opens a TCP connection to addr from the local address src;
// rcvbuf > 0 shrinks the socket's receive buffer, so that a client that
// does not read makes the server's writes block soon.
func dialFrom(t *testing.T, src, addr string, rcvbuf int) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d.Dial("tcp", addr)
}

// metric returns the text of /metrics.
func metrics(t *testing.T, g *gw) string {
	t.Helper()
	_, m := get(t, g.url+"/metrics", nil)
	return string(m)
}

// metricAtLeast reports whether the sample line named has a value >= n.
func metricAtLeast(m, name string, n float64) bool {
	v, ok := metricSample(m, name)
	return ok && v >= n
}

// metricValue is the value of the sample line named, 0 if there is none.
func metricValue(m, name string) float64 {
	v, _ := metricSample(m, name)
	return v
}

func metricSample(m, name string) (float64, bool) {
	for _, line := range strings.Split(m, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// TestSlowUploadersDoNotStarveOthers: 200 connections from one address
// trickle chunked request bodies to an upstream that reads them, with an
// upstream pool of 20. The per-client cap lets 10 of them reach the
// upstream (the others get 429 at once) and the minimum upload rate cuts
// those 10 off; meanwhile a second client's requests keep answering 200.
// Without the cap the trickles would hold the whole pool and the second
// client would get 502 after the dial timeout; without the rate, the
// trickles (a byte every 100 ms, well within ReadTimeout) would never be
// cut.
func TestSlowUploadersDoNotStarveOthers(t *testing.T) {
	var inBody atomic.Int64
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		inBody.Add(1)
		defer inBody.Add(-1)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d bytes", n)
	})
	g := startGateway(t, gateway.Options{
		Upstream:             proxy.Upstream{URL: up.URL, MaxConns: 20, DialTimeout: time.Second},
		UpstreamMaxPerClient: 10,
		UploadMinRate:        1000,
		MinRateGrace:         300 * time.Millisecond,
		ReadTimeout:          2 * time.Second,
		IdleTimeout:          2 * time.Second,
		MaxConnsPerAddress:   -1, // this test is about the upstream pool
	}, nil)

	const slow = 200
	type outcome struct {
		status int // 0: closed without an answer
		open   bool
	}
	results := make(chan outcome, slow)
	var wg sync.WaitGroup
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := dialFrom(t, slowAddr, g.addr, 0)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer conn.Close()
			o := edgetest.TrickleUpload(conn, "/upload")
			results <- outcome{status: o.Status, open: o.Open}
		}()
	}

	// Once the trickles hold their share of the upstream, the other
	// client's requests, with and without a body, still get through.
	waitFor(t, 10*time.Second, "the slow uploads to reach the upstream", func() bool { return inBody.Load() >= 10 })
	for i := range 10 {
		resp, body := get(t, g.url+"/page", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d of the other client: %d %s", i, resp.StatusCode, body)
		}
		req, _ := http.NewRequest(http.MethodPost, g.url+"/upload", strings.NewReader(strings.Repeat("x", 100_000)))
		resp, body = do(t, req)
		if resp.StatusCode != 200 || string(body) != "got 100000 bytes" {
			t.Fatalf("upload %d of the other client: %d %s", i, resp.StatusCode, body)
		}
	}

	wg.Wait()
	close(results)
	counts := map[int]int{}
	for r := range results {
		if r.open {
			t.Fatalf("a slow upload was still open after 8 s of trickling: the minimum rate did not cut it")
		}
		counts[r.status]++
	}
	if counts[http.StatusTooManyRequests] == 0 || counts[0] == 0 || counts[http.StatusOK] != 0 {
		t.Fatalf("slow uploads ended %v; want some 429 (over the per-client cap), some cut off (0), none 200", counts)
	}
	m := metrics(t, g)
	if !metricAtLeast(m, `arbor_slow_clients_cut_total{direction="upload"}`, 1) ||
		!metricAtLeast(m, "arbor_proxy_client_limited_total", 1) {
		t.Errorf("slow-client metrics not counted:\n%s", m)
	}
	if !strings.Contains(g.logs.String(), "slow client cut off") || !strings.Contains(g.logs.String(), httperr.CodeRequestTimeout) {
		t.Errorf("no log of the cut uploads (want the warning and request_timeout access lines):\n%s", g.logs.String())
	}
}

// TestSlowReadersDoNotStarveOthers: 30 connections from one address ask
// for a 64 MiB download and read nothing. The per-client cap lets 10
// through; the minimum download rate cuts those once the socket buffers
// are full; another client downloads the same file whole meanwhile.
//
// The test reads the slow connections only once each of the 30 requests
// is settled (answered 429 or cut): on a loaded machine the gateway may
// get to a slow request only after a cut freed a place, and the test,
// reading that download at full speed, would otherwise receive it whole.
// The grace is a second, not less, so that the other client, whose reads
// share the loaded machine, is not taken for a slow reader when it is
// descheduled for a moment.
func TestSlowReadersDoNotStarveOthers(t *testing.T) {
	const size = 64 << 20
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			fmt.Fprint(w, "small")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = io.Copy(w, patterned(size, 7))
	})
	g := startGateway(t, gateway.Options{
		Upstream:             proxy.Upstream{URL: up.URL, MaxConns: 20, DialTimeout: time.Second},
		UpstreamMaxPerClient: 10,
		DownloadMinRate:      1000,
		MinRateGrace:         time.Second,
		ReadTimeout:          2 * time.Second,
		IdleTimeout:          2 * time.Second,
		MaxConnsPerAddress:   -1,
	}, nil)

	const slow = 30
	conns := make([]net.Conn, 0, slow)
	for range slow {
		conn, err := dialFrom(t, slowAddr, g.addr, 4096)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	waitFor(t, 15*time.Second, "the slow readers to be cut off", func() bool {
		return metricAtLeast(metrics(t, g), `arbor_slow_clients_cut_total{direction="download"}`, 10)
	})
	for i := range 3 {
		resp, err := client.Get(g.url + "/big")
		if err != nil {
			t.Fatal(err)
		}
		sum, n := sha(resp.Body)
		resp.Body.Close()
		want, _ := sha(patterned(size, 7))
		if resp.StatusCode != 200 || n != size || sum != want {
			t.Fatalf("download %d of the other client: %d, %d bytes", i, resp.StatusCode, n)
		}
		if resp, body := get(t, g.url+"/small", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d of the other client: %d %s", i, resp.StatusCode, body)
		}
	}
	// Each slow reader got a 429 or a download cut short: wait until the
	// gateway has settled all of them before reading any.
	waitFor(t, 60*time.Second, "every slow request to be refused or cut", func() bool {
		m := metrics(t, g)
		return metricValue(m, "arbor_proxy_client_limited_total")+
			metricValue(m, `arbor_slow_clients_cut_total{direction="download"}`) >= slow
	})
	limited, cut := 0, 0
	for _, conn := range conns {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("slow reader: no response header: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		case resp.StatusCode == 200 && n < size:
			cut++
		default:
			t.Fatalf("slow reader got %d with %d bytes; want 429 or a cut-off download", resp.StatusCode, n)
		}
	}
	// At most 10 at a time reach the upstream; a place freed by a cut one
	// may go to a later request.
	if limited == 0 || cut < 10 {
		t.Fatalf("%d slow readers limited, %d cut; want some limited and at least 10 cut", limited, cut)
	}
	if !strings.Contains(g.logs.String(), `"client_error":"the client read the response slower than the minimum download rate`) {
		t.Errorf("no access line names the cut downloads:\n%s", g.logs.String())
	}
}

// TestConnectionCapPerAddress: beyond MaxConnsPerAddress, a connection
// from that address is closed at once; other addresses and trusted
// proxies are not affected, and a closed connection frees its place.
func TestConnectionCapPerAddress(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{
		Upstream:           proxy.Upstream{URL: up.URL},
		MaxConnsPerAddress: 3,
		TrustedProxies:     []string{"127.0.0.3"},
	}, nil)
	request := func(conn net.Conn) (int, error) {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
			return 0, err
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var held []net.Conn
	for i := range 3 {
		conn, err := dialFrom(t, slowAddr, g.addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// One request each, so that the server has surely accepted it.
		if st, err := request(conn); err != nil || st != 200 {
			t.Fatalf("connection %d: %d %v", i, st, err)
		}
		held = append(held, conn)
	}
	over, err := dialFrom(t, slowAddr, g.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if st, err := request(over); err == nil {
		t.Fatalf("a 4th connection from one address was served (%d); want it closed", st)
	}
	if resp, body := get(t, g.url+"/x", nil); resp.StatusCode != 200 {
		t.Fatalf("another address: %d %s", resp.StatusCode, body)
	}
	// Trusted proxies carry many clients: exempt.
	for i := range 5 {
		conn, err := dialFrom(t, "127.0.0.3", g.addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if st, err := request(conn); err != nil || st != 200 {
			t.Fatalf("trusted proxy connection %d: %d %v", i, st, err)
		}
	}
	// Closing one frees a place.
	held[0].Close()
	waitFor(t, 5*time.Second, "a freed place to be usable", func() bool {
		conn, err := dialFrom(t, slowAddr, g.addr, 0)
		if err != nil {
			return false
		}
		defer conn.Close()
		st, err := request(conn)
		return err == nil && st == 200
	})
	if !metricAtLeast(metrics(t, g), "arbor_connections_refused_total", 1) {
		t.Errorf("refused connection not counted")
	}
	if !strings.Contains(g.logs.String(), "too many open connections from one address") {
		t.Errorf("refused connection not logged:\n%s", g.logs.String())
	}
}

// holdingUpstream is an upstream that answers "ok", holding requests to
// /hold until unblock is called (at the latest when the test ends, before
// the upstream's Close). calls counts the requests that reached it.
func holdingUpstream(t *testing.T) (url string, calls *atomic.Int64, unblock func()) {
	t.Helper()
	release := make(chan struct{})
	calls = new(atomic.Int64)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/hold" {
			<-release
		}
		fmt.Fprint(w, "ok")
	})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	return up.URL, calls, unblock
}

// TestUpstreamCapPerClient: a client (as resolved through a trusted
// proxy's X-Forwarded-For) with UpstreamMaxPerClient requests in progress
// gets 429 too_many_concurrent_requests with Retry-After, without the
// upstream being asked; another client behind the same proxy is served;
// slots come back when requests end.
func TestUpstreamCapPerClient(t *testing.T) {
	upURL, calls, unblock := holdingUpstream(t)
	g := startGateway(t, gateway.Options{
		Upstream:             proxy.Upstream{URL: upURL},
		UpstreamMaxPerClient: 3,
		TrustedProxies:       []string{"127.0.0.1"},
	}, nil)
	send := func(path, client string) (*http.Response, []byte) {
		return get(t, g.url+path, map[string]string{"X-Forwarded-For": client})
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := send("/hold", "203.0.113.7"); resp.StatusCode != 200 {
				t.Errorf("held request: %d %s", resp.StatusCode, body)
			}
		}()
	}
	waitFor(t, 5*time.Second, "three requests at the upstream", func() bool { return calls.Load() == 3 })
	resp, body := send("/x", "203.0.113.7")
	wantError(t, resp, body, http.StatusTooManyRequests, proxy.CodeTooManyConcurrent)
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
	}
	if calls.Load() != 3 {
		t.Errorf("the refused request reached the upstream")
	}
	if resp, body := send("/x", "203.0.113.8"); resp.StatusCode != 200 {
		t.Fatalf("another client behind the proxy: %d %s", resp.StatusCode, body)
	}
	// IPv6 clients count by their /64.
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := send("/hold", fmt.Sprintf("2001:db8:1:2::%x", i+1)); resp.StatusCode != 200 {
				t.Errorf("held IPv6 request: %d %s", resp.StatusCode, body)
			}
		}()
	}
	waitFor(t, 5*time.Second, "six requests held", func() bool { return calls.Load() == 7 })
	resp, body = send("/x", "2001:db8:1:2::99")
	wantError(t, resp, body, http.StatusTooManyRequests, proxy.CodeTooManyConcurrent)
	unblock()
	wg.Wait()
	if resp, body := send("/x", "203.0.113.7"); resp.StatusCode != 200 {
		t.Fatalf("after the held requests ended: %d %s", resp.StatusCode, body)
	}
}

// TestUpstreamCapThroughPins: a request that counts for its TCP peer takes
// its slot through the pin the gateway took for the connection at accept;
// one for a client a trusted proxy names, through the cap's map. Here the
// client is 127.0.0.2, trusted as a proxy, and names itself
// (X-Forwarded-For: 127.0.0.2), so both kinds
// count for one key and must share one count: a held request of each kind
// and a third fill the cap, and the fourth is refused either way. Once
// every connection from 127.0.0.2 is closed, the cap holds no entry for it
// (arbor_upstream_clients counts only the scrape's own client, 127.0.0.1):
// pins are let go with their connections.
func TestUpstreamCapThroughPins(t *testing.T) {
	upURL, calls, unblock := holdingUpstream(t)
	g := startGateway(t, gateway.Options{
		Upstream:             proxy.Upstream{URL: upURL},
		UpstreamMaxPerClient: 3,
		TrustedProxies:       []string{"127.0.0.2"},
	}, nil)
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	send := func(path, xff string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, g.url+path, nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	for _, xff := range []string{"", "127.0.0.2", ""} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := send("/hold", xff); code != 200 {
				t.Errorf("held request (X-Forwarded-For %q): %d %s", xff, code, body)
			}
		}()
	}
	waitFor(t, 5*time.Second, "three requests at the upstream", func() bool { return calls.Load() == 3 })
	if v := scrapeClients(t, g.url); v != 2 {
		t.Errorf("arbor_upstream_clients = %v while 127.0.0.2 holds requests, want 2 (127.0.0.2 and the scrape's 127.0.0.1)", v)
	}
	for _, xff := range []string{"", "127.0.0.2"} {
		if code, body := send("/x", xff); code != http.StatusTooManyRequests || !strings.Contains(body, proxy.CodeTooManyConcurrent) {
			t.Errorf("fourth request (X-Forwarded-For %q): %d %s, want 429 %s", xff, code, body, proxy.CodeTooManyConcurrent)
		}
	}
	if code, body := send("/x", "203.0.113.8"); code != 200 {
		t.Errorf("another client behind the proxy: %d %s", code, body)
	}
	unblock()
	wg.Wait()
	for _, xff := range []string{"", "127.0.0.2"} {
		if code, body := send("/x", xff); code != 200 {
			t.Errorf("after the held requests ended (X-Forwarded-For %q): %d %s", xff, code, body)
		}
	}
	tr.CloseIdleConnections()
	waitFor(t, 5*time.Second, "127.0.0.2's entry to go with its connections", func() bool {
		return scrapeClients(t, g.url) == 1
	})
}

// scrapeClients reads arbor_upstream_clients on a connection of its own
// from 127.0.0.1, closed after the answer.
func scrapeClients(t *testing.T, base string) float64 {
	t.Helper()
	scrape := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := scrape.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	v, ok := metricSample(string(b), "arbor_upstream_clients")
	if !ok {
		t.Fatalf("no arbor_upstream_clients in /metrics")
	}
	return v
}

// echoWS is an upstream that echoes WebSocket messages.
func echoWS(t *testing.T) string {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		u := websocket.Upgrader{}
		conn, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	return up.URL
}

// TestWebSocketIdleLimit: a tunnel with traffic stays open past the idle
// limit; one without is closed.
func TestWebSocketIdleLimit(t *testing.T) {
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: echoWS(t)}, WebSocketIdleTimeout: 300 * time.Millisecond}, nil)
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	busy, _, err := dialer.Dial("ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	idle, _, err := dialer.Dial("ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := edgetest.WSEcho(idle, "hello"); err != nil {
		t.Fatal(err)
	}
	// Ten exchanges 100 ms apart: a second of use, over three idle limits.
	for i := range 10 {
		time.Sleep(100 * time.Millisecond)
		if err := edgetest.WSEcho(busy, fmt.Sprint("ping ", i)); err != nil {
			t.Fatalf("busy tunnel, message %d: %v", i, err)
		}
	}
	if !edgetest.WSClosed(idle) {
		t.Fatal("idle tunnel still open")
	}
	if !strings.Contains(g.logs.String(), "WebSocket tunnel closed: idle") {
		t.Errorf("idle close not logged:\n%s", g.logs.String())
	}
}

// TestWebSocketClosedWithItsOwner: CloseTunnels ends the tunnels of one
// sign-in and leaves the others open.
func TestWebSocketClosedWithItsOwner(t *testing.T) {
	g := startGateway(t, gateway.Options{
		Upstream:    proxy.Upstream{URL: echoWS(t)},
		TunnelOwner: func(c *fiber.Ctx) string { return c.Query("owner") },
	}, nil)
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	open := func(owner string) *websocket.Conn {
		conn, _, err := dialer.Dial("ws://"+g.addr+"/ws?owner="+owner, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := edgetest.WSEcho(conn, "hi "+owner); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	a1, a2, b := open("session:a"), open("session:a"), open("session:b")
	if !g.srv.HasTunnels("session:a") || len(g.srv.TunnelOwners()) != 2 {
		t.Fatalf("owners = %v", g.srv.TunnelOwners())
	}
	if n := g.srv.CloseTunnels("session:a"); n != 2 {
		t.Fatalf("CloseTunnels closed %d, want 2", n)
	}
	if !edgetest.WSClosed(a1) || !edgetest.WSClosed(a2) {
		t.Fatal("a tunnel of the ended sign-in is still open")
	}
	if err := edgetest.WSEcho(b, "still here"); err != nil {
		t.Fatalf("the other sign-in's tunnel: %v", err)
	}
	waitFor(t, 5*time.Second, "the closed tunnels to be forgotten", func() bool { return !g.srv.HasTunnels("session:a") })
}
