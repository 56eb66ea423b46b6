// Package client signs a command-line tool in through Arbor and keeps it
// signed in. It is the client side of the contract in docs/cli-login.md;
// cmd/grape is the reference CLI built on it, and any other CLI can import
// it the same way.
//
// # Flow
//
//	cfg := client.Config{Server: "https://arbor.example", ClientName: "grape",
//		Store: client.FileStore{Path: client.DefaultPath()}}
//	tok, err := client.Login(ctx, cfg, ui)          // once, interactively
//	hc := &http.Client{Transport: client.NewTransport(cfg, nil)}
//	resp, err := hc.Get("https://arbor.example/api/auth/me")
//
// Login makes a random device code (a UUID v4) and a PKCE code_verifier,
// announces them to Arbor (POST /api/auth/cli/start, with only the SHA-256
// challenge of the verifier), and has the LoginUI open the returned login
// URL in a browser and print it. The user approves the request in the
// browser, where Arbor shows a 6-character verification code, and types
// that code into the terminal. Login exchanges device code, verification
// code and verifier for an access token (1 hour) and a rotating refresh
// token (90 days), and saves the pair to Config.Store. A wrong code may be
// retyped (5 tries in all, as Arbor burns the request after 5 wrong codes).
//
// Transport then adds "Authorization: Bearer <access token>" to every
// request to the server, refreshes the pair shortly before the access token
// expires (one refresh for any number of concurrent requests), saves the
// rotated pair before using it, and after a 401 refreshes and retries once.
// ValidToken does the same for callers that want the bare token (`grape
// token`), and Logout revokes the login on the server and deletes the
// local copy.
//
// # Workers
//
// Workers manages the signed-in user's Tendril workers through Arbor's
// workers API (PathWorkers), with the same stored login as Transport:
//
//	ws := client.NewWorkers(cfg)
//	w, token, err := ws.Register(ctx, "build-01") // token shown only now
//	list, err := ws.List(ctx)
//	w, token, err = ws.Rotate(ctx, w.ID)          // the old token stops working
//	err = ws.Revoke(ctx, w.ID)
//	if client.IsCode(err, client.CodeWorkerNotFound) { … }
//
// Ids are checked (ParseWorkerID) before anything is sent, and a token
// Arbor answers with must pass ValidWorkerToken. No error quotes a token.
// The worker itself authenticates with NewWorkerTransport.
//
// # Threat model
//
//   - Tokens at rest: FileStore writes the pair to a file of mode 0600 in a
//     directory of mode 0700 (by default $XDG_CONFIG_HOME/grape/auth.json or
//     ~/.config/grape/auth.json), atomically (temporary file in the same
//     directory, fsync, rename), so a crash never leaves a truncated file
//     and other local users cannot read it. A file that group or others can
//     read or write is refused rather than used, with the chmod to run.
//   - The code_verifier never leaves the machine except in the exchange
//     request itself: the start request and the login URL only carry its
//     SHA-256 challenge. Someone who watches the login URL (a shared
//     screen, browser history, a proxy log) and then types the code they see
//     still cannot exchange it, because they lack the verifier.
//   - The verification code is shown only to a signed-in user who approved
//     the request; Arbor burns the request after 5 wrong codes, and the
//     client never sends more than 5.
//   - Tokens are only sent to the server they were issued by: Transport adds
//     the bearer token only to requests for the token's origin (scheme,
//     host, port), so a redirect to another host never carries it, and the
//     auth endpoints are called without following redirects. Plain http is
//     accepted only for loopback servers (arbor dev).
//   - Refresh tokens rotate and reusing a rotated one revokes the whole
//     login. The client therefore saves the new pair before using it, runs a
//     refresh to completion even when the request that triggered it is
//     cancelled, re-reads the store before refreshing (another process may
//     have refreshed already), and deletes the stored pair only when Arbor
//     answers invalid_grant for the pair that is still stored.
//
// Not covered: two processes that refresh the same pair at the same
// instant (there is no cross-process lock; the loser's invalid_grant asks
// the user to log in again), and an attacker who runs as the same local
// user, who can read the file like the CLI does.
package client
