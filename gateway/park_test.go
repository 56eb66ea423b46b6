package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
)

// Parking idle keep-alive connections (park.go): a connection idle for
// ParkIdleAfter leaves fasthttp and comes back at its next byte.

const parkAfter = 50 * time.Millisecond

// connMetric reads one sample of /metrics on a connection of its own that
// closes after the answer, so that it is never parked itself.
func connMetric(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := rawRequest(t, addr, "GET /metrics HTTP/1.1\r\nHost: arbor\r\nConnection: close\r\n\r\n")
	return metricValue(string(body), name)
}

// waitParked waits until /metrics reports n parked connections.
func waitParked(t *testing.T, addr string, n float64, what string) {
	t.Helper()
	waitFor(t, 5*time.Second, what, func() bool { return connMetric(t, addr, "arbor_connections_parked") == n })
}

// exchange sends one GET for path on conn and returns the URI the echo
// upstream saw.
func exchange(t *testing.T, conn net.Conn, br *bufio.Reader, path string) echo {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: app\r\n\r\n", path); err != nil {
		t.Fatalf("writing GET %s: %v", path, err)
	}
	return readEcho(t, br, path)
}

func readEcho(t *testing.T, br *bufio.Reader, path string) echo {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
	}
	e := mustEcho(t, body)
	if e.URI != path {
		t.Fatalf("GET %s reached the upstream as %q", path, e.URI)
	}
	return e
}

// TestIdleConnectionParksAndResumes: an idle keep-alive connection is
// parked, and the requests it sends later (one, then two pipelined in one
// write) are served on it as if it had never left; a request whose bytes
// are slow to come is being read, not idle, and is not parked.
func TestIdleConnectionParksAndResumes(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, ParkIdleAfter: parkAfter}, nil)
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	exchange(t, conn, br, "/first")
	waitParked(t, g.addr, 1, "the idle connection to be parked")
	exchange(t, conn, br, "/second")
	if n := connMetric(t, g.addr, "arbor_connections_unparked_total"); n != 1 {
		t.Fatalf("arbor_connections_unparked_total %v after one request on a parked connection; want 1", n)
	}

	waitParked(t, g.addr, 1, "the connection to be parked again")
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /p1 HTTP/1.1\r\nHost: app\r\n\r\nGET /p2 HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	readEcho(t, br, "/p1")
	readEcho(t, br, "/p2")

	// Half a request line, then a pause of many park periods: the
	// connection is reading a request, so it stays with fasthttp.
	waitParked(t, g.addr, 1, "the connection to be parked a third time")
	unparked := connMetric(t, g.addr, "arbor_connections_unparked_total")
	if _, err := io.WriteString(conn, "GET /sl"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * parkAfter)
	if n := connMetric(t, g.addr, "arbor_connections_parked"); n != 0 {
		t.Fatalf("arbor_connections_parked %v while a request line is half sent; want 0", n)
	}
	if _, err := io.WriteString(conn, "ow HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	readEcho(t, br, "/slow")
	if n := connMetric(t, g.addr, "arbor_connections_unparked_total"); n != unparked+1 {
		t.Fatalf("arbor_connections_unparked_total %v; want %v (the first byte woke it, once)", n, unparked+1)
	}
}

// TestParkedConnectionKeepsTimeoutsAndCap: a parked connection still
// counts against MaxConnsPerAddress, is still closed at IdleTimeout, and
// its place is given back when it is.
func TestParkedConnectionKeepsTimeoutsAndCap(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{
		Upstream:           proxy.Upstream{URL: up.URL},
		ParkIdleAfter:      parkAfter,
		IdleTimeout:        time.Second,
		MaxConnsPerAddress: 1,
	}, nil)
	conn, err := dialFrom(t, slowAddr, g.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	exchange(t, conn, br, "/a")
	waitParked(t, g.addr, 1, "the connection to be parked")
	second, err := dialFrom(t, slowAddr, g.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = second.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(second, "GET /b HTTP/1.1\r\nHost: app\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(second), nil); err == nil {
		t.Fatal("a second connection from the address was served while the first was parked; the cap is 1")
	}
	second.Close()

	// The idle timeout closes the parked connection: the client reads EOF.
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the parked connection gave %v, %v; want EOF at the idle timeout", n, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("closed after %v; want about the idle timeout (1s)", el)
	}
	waitParked(t, g.addr, 0, "the parked count to drop")
	third, err := dialFrom(t, slowAddr, g.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	exchange(t, third, bufio.NewReader(third), "/c")
}

// TestParkedTLSConnection: a TLS connection parks and resumes too, and the
// request after the park is still known to have come over TLS.
func TestParkedTLSConnection(t *testing.T) {
	up := echoUpstream(t)
	addr, ca, _ := startTLSGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, ParkIdleAfter: parkAfter})
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if p := exchange(t, conn, br, "/one").Header.Get("X-Forwarded-Proto"); p != "https" {
		t.Fatalf("X-Forwarded-Proto %q; want https", p)
	}
	metrics := ca.Client()
	parked := func() float64 {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		req.Close = true
		resp, err := metrics.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return metricValue(string(b), "arbor_connections_parked")
	}
	waitFor(t, 5*time.Second, "the TLS connection to be parked", func() bool { return parked() == 1 })
	if p := exchange(t, conn, br, "/two").Header.Get("X-Forwarded-Proto"); p != "https" {
		t.Fatalf("after the park: X-Forwarded-Proto %q; want https", p)
	}
}

// TestShutdownClosesParkedConnections: Shutdown does not wait for parked
// connections (fasthttp does not know them) and closes them.
func TestShutdownClosesParkedConnections(t *testing.T) {
	up := echoUpstream(t)
	s, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, ParkIdleAfter: parkAfter, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	exchange(t, conn, br, "/a")
	waitParked(t, ln.Addr().String(), 1, "the connection to be parked")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a parked connection: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the parked connection after Shutdown gave %v, %v; want EOF", n, err)
	}
}

// TestParkingUnderChurn: connections that pause for random times around
// the park period, so that requests race the sweeper's decision, each get
// exactly their own answers, in order.
func TestParkingUnderChurn(t *testing.T) {
	up := echoUpstream(t)
	const period = 20 * time.Millisecond
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, ParkIdleAfter: period}, nil)
	const conns, requests = 16, 60
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", g.addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range requests {
				time.Sleep(time.Duration(rng.Int64N(int64(3 * period))))
				path := fmt.Sprintf("/c%d/r%d", i, j)
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: app\r\n\r\n", path)
				if j%5 == 4 { // now and then, pipelined with the next
					j++
					next := fmt.Sprintf("/c%d/r%d", i, j)
					req += fmt.Sprintf("GET %s HTTP/1.1\r\nHost: app\r\n\r\n", next)
					if _, err := io.WriteString(conn, req); err != nil {
						errs <- err
						return
					}
					for _, p := range []string{path, next} {
						if err := readURI(br, p); err != nil {
							errs <- err
							return
						}
					}
					continue
				}
				if _, err := io.WriteString(conn, req); err != nil {
					errs <- err
					return
				}
				if err := readURI(br, path); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := connMetric(t, g.addr, "arbor_connections_unparked_total"); n < conns {
		t.Errorf("only %v requests woke a parked connection; the test did not exercise parking", n)
	}
}

func readURI(br *bufio.Reader, path string) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
	}
	if want := fmt.Sprintf(`"URI":%q`, path); !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s was answered with %s", path, body)
	}
	return nil
}
