package https

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// listener wraps accepted connections in TLS.
type listener struct {
	net.Listener
	t *Terminator
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: tls.Server(c, l.t.config), t: l.t}, nil
}

// conn is a server-side TLS connection whose failed handshake reads as the
// end of the connection. It keeps *tls.Conn's Handshake and
// ConnectionState, which fasthttp (RequestCtx.IsTLS) and the gateway look
// for.
type conn struct {
	*tls.Conn
	t      *Terminator
	failed atomic.Bool
}

// Read completes the handshake first. Once it is complete, Handshake is one
// atomic load.
func (c *conn) Read(b []byte) (int, error) {
	if err := c.Conn.Handshake(); err != nil {
		if c.failed.CompareAndSwap(false, true) {
			c.t.handshakeFailed(c, err)
		}
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

// plainHTTPAnswer is what net/http answers plain http on a TLS port.
const plainHTTPAnswer = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// handshakeFailed answers plain http with a 400 and logs, sampled, what
// went wrong. A client that closed or a connection the server closed
// (read timeout, shutdown) before saying anything is not worth a line.
func (t *Terminator) handshakeFailed(c *conn, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	ok, suppressed := t.failures.allow(t.now())
	reason := "handshake"
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
		reason = "plain http on the https port"
		_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rh.Conn, plainHTTPAnswer)
	}
	if !ok {
		return
	}
	t.log.Info("TLS handshake failed (sampled: at most one line a minute)",
		"reason", reason, "remote_ip", remoteIP(c.RemoteAddr()), "err", err.Error(), "not_logged_since_last", suppressed)
}

// looksLikeHTTP is net/http's test of a TLS record header that is really
// the start of an HTTP/1 request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE":
		return true
	}
	return false
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	return a.String()
}
