package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
		case r.open:
			t.Fatal("a slow client was still connected after its bounded trickle, or read its whole download: nothing cut it")
		case r.status == 0:
			closed++ // refused at accept, or an upload cut off
		case r.status == http.StatusTooManyRequests:
			limited++
		case r.status == http.StatusOK:
			cutDownloads++ // a download cut short
		default:
			t.Errorf("a slow client got %d", r.status)
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
type slowOutcome struct {
	status int  // 0: closed without an answer
	open   bool // still open after the bounded trickle, or read whole
}

// slowUpload sends a chunked POST a byte every 100 ms, for at most 8 s.
func slowUpload(t *testing.T, addr string, src net.IP) slowOutcome {
	conn, err := slowConn(addr, src)
	if err != nil {
		return slowOutcome{}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
		return slowOutcome{}
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	for range 80 {
		select {
		case st := <-answered:
			return slowOutcome{status: st}
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := io.WriteString(conn, "1\r\na\r\n"); err != nil {
			return slowOutcome{status: <-answered}
		}
	}
	return slowOutcome{open: true}
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
	return slowOutcome{status: resp.StatusCode, open: still || (resp.StatusCode == 200 && n == size)}
}
