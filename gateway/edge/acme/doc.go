// Package acme obtains, renews and serves Arbor's certificates through ACME
// (tls.acme.*), keeping the account, the certificates and their sealed
// private keys in Arbor's store, so that every replica on a shared (etcd)
// store serves the same certificate and only one of them orders it.
//
// It is a thin layer over certmagic (the library Caddy and Pomerium use;
// docs/acme.md says why it and not x/crypto/acme/autocert): [New] builds a
// [Manager] from [Options]; the https listener takes its certificates from
// [Manager.GetCertificate] and offers [Manager.NextProtos] (acme-tls/1, for
// the TLS-ALPN-01 challenge); the plain listener passes every request to
// [Manager.HTTPChallenge] first (HTTP-01); [Manager.Start] then loads or
// obtains the certificates and keeps them renewed; [Manager.Close] stops.
//
// # Order of start-up
//
// The CA validates by connecting to Arbor's listeners, so they must be
// serving, with the Manager plugged in, before Start asks for a
// certificate: New (no network), bind and serve the listeners, Start
// (bounded by Options.StartTimeout), then report ready. If a challenge
// port were free when an order runs, certmagic would bind it itself for
// the challenge (its robustTryListen) and Arbor's listener could then
// fail to bind.
//
// # Storage
//
// certmagic.Storage is implemented over [Blobs] (the store's named values)
// and data.Locks, with every key under "acme/". certmagic takes the lock
// "issue_cert_<name>" around each order, first or renewal, and looks in
// the store again once it holds it, which is how a second replica finds
// the certificate instead of ordering it. Values whose key ends in ".key"
// (certificate and ACME account private keys) are sealed by
// [Options.Sealer]; [SealWith] gives the store's keyring, the one that
// seals provider tokens.
package acme
