// Package edgetest holds the hostile and ordinary clients that tests of
// Arbor's edge play against a real server: a trickling uploader, and a
// WebSocket echo and close check. Tests of the gateway, of tunnelwatch and
// of the real `arbor serve` use the same clients, so that what one test
// calls a slow client is what the others call one.
package edgetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fasthttp/websocket"
)

// Outcome is how a slow client's connection ended.
type Outcome struct {
	Status int  // the answer's status; 0: closed without an answer
	Open   bool // still open after the bounded trickle
}

// TrickleUpload sends, on conn, a chunked POST to path and then one byte
// every 100 ms, for at most 8 s, and reports how the connection ended. It
// gives conn a 30 s deadline and does not close it.
func TrickleUpload(conn net.Conn, path string) Outcome {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := "POST " + path + " HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		return Outcome{}
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
			return Outcome{Status: st}
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := io.WriteString(conn, "1\r\na\r\n"); err != nil {
			return Outcome{Status: <-answered}
		}
	}
	return Outcome{Open: true}
}

// WSEcho sends msg over a tunnel to an echo server and checks that it comes
// back within 5 s.
func WSEcho(conn *websocket.Conn, msg string) error {
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, got, err := conn.ReadMessage()
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// WSClosed waits at most 5 s for the tunnel under conn to be closed: true
// when a read fails other than by that timeout.
func WSClosed(conn *websocket.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := conn.ReadMessage()
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
