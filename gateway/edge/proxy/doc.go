// Package proxy is Arbor's reverse proxy to its one upstream, built on
// fasthttp's HostClient.
//
// # What reaches the upstream
//
// The client's request is rewritten in place (Fiber already parsed it; a
// copy would cost as much again):
//
//   - Hop-by-hop headers go: Connection and every header it names,
//     Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade (kept only for a
//     WebSocket handshake), Expect (Arbor answered it), and Proxy-*.
//   - Identity headers go: every X-Arbor-* header and each configured
//     IdentityHeaders name. Matching ignores case and treats '_' as '-',
//     because nginx (underscores_in_headers), CGI, WSGI and Rack all map
//     X-Arbor-User and X_Arbor_User to the same HTTP_X_ARBOR_USER: stripping
//     only the dashed spelling would let a client forge the other. The same
//     applies to forwarding headers: an underscore spelling is always
//     dropped.
//   - Forwarding headers are Arbor's: X-Forwarded-For, -Proto, -Host,
//     Forwarded and X-Real-Ip describe the TCP peer. From a peer in
//     TrustedProxies the incoming values are believed: X-Forwarded-For and
//     Forwarded are appended to, -Proto, -Host and X-Real-Ip kept, other
//     X-Forwarded-* passed through. From anyone else they are replaced (and
//     other X-Forwarded-* dropped), since any client can send them.
//   - Then the Director runs, so that what it adds (Arbor's identity
//     headers, the assertion) is exactly what the upstream sees.
//
// The Host header is the client's (as oauth2-proxy and httputil do; apps
// build absolute URLs from it) unless RewriteHost is set. The path is sent
// raw, as the client wrote it (%2F stays %2F), with the upstream URL's base
// path in front. A path with "." or ".." segments, in any encoding, is
// refused with 400 bad_path: those are where two URL parsers disagree, and
// Arbor's routing must see the same path as the upstream. Browsers never
// send them.
//
// # Streaming
//
// Request bodies are relayed as they arrive (the server streams them); the
// body limit is checked against Content-Length before the upstream is
// contacted and counted for chunked bodies. The upstream's answer is read
// straight into the client's response, and the proxy's own RoundTripper
// (transport) decides, once the header is in, where the body goes. A body
// of declared length up to 8 KiB is read whole before answering: it almost
// always arrived with the header, and the upstream connection goes back to
// the pool at once. Any other body is streamed: a download is never held in
// memory, and a chunked response such as a server-sent event stream reaches
// the client chunk by chunk, each flushed, with the header sent at once.
// (fasthttp's own switch, HostClient.StreamResponseBody, decides before the
// header for every response, and streaming the usual small answer costs
// about 7 % of the proxy's CPU.) An HTTP/1.0 upstream's answer goes to the
// client as HTTP/1.1; one without a length then ends with the client's
// connection.
//
// # Timeouts and failures
//
// DialTimeout bounds connecting; a failed dial is 502 upstream_unavailable.
// ResponseHeaderTimeout bounds the wait for the response header, not the
// body (a download or event stream may last hours); exceeding it is 504
// upstream_timeout. It is enforced by a watchdog over all upstream
// connections rather than by read deadlines (see headerConn), which saves
// two timer updates per request. A pooled connection that the upstream
// closed while idle is retried once on a new one, for idempotent methods
// without a body only: a POST may already have been acted on. Idle pooled
// connections are closed after Upstream.IdleTimeout, 4 s by default, below the
// 5 s keep-alive of Node.js servers, so that Arbor rarely picks a
// connection the upstream is about to close.
//
// # WebSocket
//
// A WebSocket handshake is sent to the upstream on its own connection with
// the same header treatment. If the upstream switches protocols, the client
// connection is hijacked and bytes are copied both ways until one side
// closes; frames are not parsed. Close ends every tunnel; the gateway calls
// it after the HTTP server has drained. A tunnel is also closed after
// TunnelIdleTimeout without a byte either way, and by CloseTunnels when the
// sign-in that opened it (TunnelOwner) ends (see tunnels.go).
//
// # One client, one share of the upstream
//
// MaxPerClient caps the requests and tunnels of one client (ClientAddr)
// that hold an upstream connection; beyond it the answer is 429
// too_many_concurrent_requests with Retry-After, and the upstream is not
// contacted. Without it, a few thousand slow requests from one client hold
// the whole pool (MaxConns) and every other client waits for a connection
// until the dial timeout answers 502 (see clientlimit.go).
package proxy
