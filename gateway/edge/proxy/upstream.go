package proxy

import (
	"crypto/tls"
	"errors"
	"net/url"
	"time"
)

// Upstream is the one declaration of the upstream settings. The YAML
// config's upstream: section (config), gateway.Options.Upstream and
// Config.Upstream are all this type, so a new setting is written here once,
// with its YAML key, and reaches the proxy without being copied.
//
// A zero field gets the proxy's default (the Default* constants). The YAML
// config starts from its own defaults (config.Default); where one differs,
// the field says so.
type Upstream struct {
	// URL is where requests go: http or https, host and optional port,
	// optional base path that is prepended to every request path. Required
	// by New; empty in gateway.Options turns the proxy off. YAML default
	// http://127.0.0.1:3000.
	URL string `yaml:"url"`
	// DialTimeout bounds opening a connection (and the TLS handshake) to the
	// upstream. Default 5s. A failed or timed-out dial answers 502
	// upstream_unavailable: the upstream is down, not slow.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// header once the request has been sent. The body is not limited, so
	// downloads and event streams can run as long as they need. Default 60s.
	// Exceeding it answers 504 upstream_timeout.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleTimeout closes pooled upstream keep-alive connections idle this
	// long. Default 4s, below the 5s keep-alive timeout of Node.js servers,
	// the shortest common default: an upstream that closes an idle
	// connection first makes the next request on it fail. YAML default 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// RewriteHeaders are header names stripped from client requests because
	// an upstream framework may take the request's URL or path from them
	// instead of the request line, after Arbor classified the path (see
	// docs/edge.md). Nil means DefaultRewriteHeaders; an empty, non-nil
	// list strips none (the YAML config never leaves it nil: an empty list
	// there strips none). Matching is as for Config.IdentityHeaders.
	RewriteHeaders []string `yaml:"rewrite_headers"`
	// MaxConns caps concurrent connections to the upstream; every request
	// in progress and every open event stream holds one. Size
	// server.upstream_max_per_client (Config.MaxPerClient) well below it.
	// Default 2048.
	MaxConns int `yaml:"max_conns"`
	// TLS is used for an https upstream. Nil means the system roots and the
	// upstream's host name. Not a YAML key.
	TLS *tls.Config `yaml:"-"`
}

// urlParseError drops the URL a *url.Error repeats, which may carry
// credentials.
func urlParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
