package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/vintner/arbor/gateway/edge/edgetest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/plugintest"
)

// TestHostileSlowClients runs the real `arbor serve` with small limits
// (through ARBOR_… variables) and an upstream pool of 20 connections.
// From one address (127.0.0.2), 200 connections trickle chunked uploads;
// from another (127.0.0.3), 20 ask for a 64 MiB download and read nothing;
// from a third (127.0.0.1), a normal client keeps making requests, uploads and
// downloads, and every one answers 200. The slow ones are refused at
// accept (max_conns_per_address), answered 429 (upstream_max_per_client)
// or cut off (the minimum rates). Without these limits the trickles alone
// would hold the 20 upstream connections and the normal client would get
// 502 after the dial timeout.
func TestHostileSlowClients(t *testing.T) {
	const bigSize = 64 << 20
	var uploading atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			uploading.Add(1)
			defer uploading.Add(-1)
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "got %d bytes", n)
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(bigSize))
			_, _ = io.Copy(w, io.LimitReader(zeros{}, bigSize))
		default:
			fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
		}
	}))
	defer upstream.Close()

	e := newTestEnv(t)
	srv := startServe(t, e.with(
		"ARBOR_UPSTREAM_URL="+upstream.URL,
		"ARBOR_AUTH_DEFAULT_ROUTE=public",
		"ARBOR_UPSTREAM_MAX_CONNS=20",
		"ARBOR_UPSTREAM_DIAL_TIMEOUT=1s",
		"ARBOR_SERVER_READ_TIMEOUT=2s",
		"ARBOR_SERVER_UPLOAD_MIN_RATE=1000",
		"ARBOR_SERVER_DOWNLOAD_MIN_RATE=1000",
		"ARBOR_SERVER_MIN_RATE_GRACE=300ms",
		"ARBOR_SERVER_MAX_CONNS_PER_ADDRESS=100",
		"ARBOR_SERVER_UPSTREAM_MAX_PER_CLIENT=10",
	))

	// The per-address connection cap, deterministically: more connections
	// from one address than it allows, all held open at once. (The slow
	// uploaders below reach it too on a quiet machine, but under load
	// their 429s can come back faster than they connect.)
	var held []net.Conn
	for range 110 {
		if c, err := slowConn(srv.addr, net.IPv4(127, 0, 0, 4)); err == nil {
			held = append(held, c)
		}
	}
	refused := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			refused++ // closed by Arbor at once, without an answer
		}
	}
	for _, c := range held {
		c.Close()
	}
	if len(held) < 101 || refused == 0 {
		t.Fatalf("%d connections from one address held at once (cap 100): %d closed by Arbor, want some", len(held), refused)
	}

	const uploaders, readers = 200, 20
	results := make(chan slowOutcome, uploaders+readers)
	var wg sync.WaitGroup
	for range uploaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- slowUpload(t, srv.addr, net.IPv4(127, 0, 0, 2))
		}()
	}
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- slowRead(t, srv.addr, net.IPv4(127, 0, 0, 3), bigSize)
		}()
	}

	// Meanwhile, the normal client.
	for i := range 10 {
		resp, err := http.Get("http://" + srv.addr + "/page")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "upstream saw /page" {
			t.Fatalf("normal request %d: %d %s", i, resp.StatusCode, body)
		}
		resp, err = http.Post("http://"+srv.addr+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", 200_000)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "got 200000 bytes" {
			t.Fatalf("normal upload %d: %d %s", i, resp.StatusCode, body)
		}
		if i%5 == 0 {
			resp, err = http.Get("http://" + srv.addr + "/big")
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != bigSize {
				t.Fatalf("normal download %d: %d, %d bytes", i, resp.StatusCode, n)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	wg.Wait()
	close(results)
	var closed, limited, cutDownloads int
	for r := range results {
		switch {
		case r.Open:
			t.Fatal("a slow client was still connected after its bounded trickle, or read its whole download: nothing cut it")
		case r.Status == 0:
			closed++ // refused at accept, or an upload cut off
		case r.Status == http.StatusTooManyRequests:
			limited++
		case r.Status == http.StatusOK:
			cutDownloads++ // a download cut short
		default:
			t.Errorf("a slow client got %d", r.Status)
		}
	}
	t.Logf("slow clients: %d closed without an answer (refused at accept or upload cut off), %d answered 429, %d downloads cut short", closed, limited, cutDownloads)
	if closed == 0 || limited == 0 || cutDownloads == 0 {
		t.Fatalf("want some of each: closed %d, limited %d, downloads cut %d", closed, limited, cutDownloads)
	}
	logs := srv.logs.String()
	for _, want := range []string{"too many open connections from one address", "slow client cut off", `"error":"too_many_concurrent_requests"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// slowConn connects from src with a small receive buffer.
func slowConn(addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src},
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
	return d.Dial("tcp", addr)
}

// slowOutcome is how a slow client's connection ended.
type slowOutcome = edgetest.Outcome

// slowUpload sends a chunked POST a byte every 100 ms, for at most 8 s.
func slowUpload(t *testing.T, addr string, src net.IP) slowOutcome {
	conn, err := slowConn(addr, src)
	if err != nil {
		return slowOutcome{}
	}
	defer conn.Close()
	return edgetest.TrickleUpload(conn, "/upload")
}

// slowRead asks for a large download and reads nothing for 3 s, then
// reads what it can get.
func slowRead(t *testing.T, addr string, src net.IP, size int64) slowOutcome {
	conn, err := slowConn(addr, src)
	if err != nil {
		return slowOutcome{}
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		return slowOutcome{}
	}
	// Not reading: Arbor's writes block once the socket buffers are full.
	time.Sleep(3 * time.Second)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return slowOutcome{}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var ne net.Error
	still := errors.As(err, &ne) && ne.Timeout() // still streaming after 10 s
	return slowOutcome{Status: resp.StatusCode, Open: still || (resp.StatusCode == 200 && n == size)}
}

// TestWebSocketTunnelEndsAtLogout runs the real `arbor serve` with the
// fake providers: two users sign in and open a WebSocket tunnel each
// through Arbor to an echo upstream; one logs out, and her tunnel is
// closed while the other user's keeps working.
func TestWebSocketTunnelEndsAtLogout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			_ = conn.WriteMessage(mt, msg)
		}
	}))
	defer up.Close()

	// The fake providers need Arbor's public URL before it starts.
	addr := freeAddr(t)
	base := "http://" + addr
	set, err := fakes.Start(base, fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	e := newTestEnv(t)
	env := append(e.with(
		// Its own metrics port: the default, 127.0.0.1:9180, is taken by
		// whichever test server runs alongside (arbor serve then exits).
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_LISTEN="+addr,
		"ARBOR_UPSTREAM_URL="+up.URL,
		"ARBOR_PLUGINS_CACHE_DIR="+plugintest.DefaultCacheDir(),
	), set.Environ()...)
	cmd := exec.Command(arborBin, "serve")
	cmd.Env = env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the process has been waited for (waitErr then
	// holds Wait's answer), so that both the readiness loop and the
	// cleanup can see the exit: a channel value read by one would leave
	// the other waiting forever.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("arbor serve log:\n%s", tail(logs.String(), 6000))
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("arbor serve exited: %v\n%s", waitErr, tail(logs.String(), 6000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 3 minutes\n%s", tail(logs.String(), 6000))
		}
	}

	open := func(a *agent) *websocket.Conn {
		cookie, err := a.signIn(base)
		if err != nil {
			t.Fatal(err)
		}
		conn, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial("ws://"+addr+"/ws",
			http.Header{"Cookie": {"arbor_session=" + cookie}})
		if err != nil {
			t.Fatalf("WebSocket through Arbor: %v (%v)", err, resp)
		}
		t.Cleanup(func() { conn.Close() })
		if err := edgetest.WSEcho(conn, "hello"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	alice, bob := newAgent(t, 10*time.Second), newAgent(t, 10*time.Second)
	aliceWS, bobWS := open(alice), open(bob)

	page, err := expect(alice.get(base+"/auth/logout", nil))(http.StatusOK, "logout page")
	if err != nil {
		t.Fatal(err)
	}
	m := csrfFieldRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("logout page without CSRF")
	}
	if _, err := expect(alice.postForm(base+"/auth/logout", url.Values{"csrf": {m[1]}}))(http.StatusSeeOther, "logout"); err != nil {
		t.Fatal(err)
	}
	_ = aliceWS.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = aliceWS.ReadMessage()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the tunnel of the logged-out session is still open (%v)", err)
	}
	if err := edgetest.WSEcho(bobWS, "still here"); err != nil {
		t.Fatalf("the other user's tunnel: %v", err)
	}
	if !strings.Contains(logs.String(), "WebSocket tunnel closed: its sign-in ended") {
		t.Errorf("the close was not logged")
	}
}
