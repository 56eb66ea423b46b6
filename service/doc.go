// Package service is the home of Arbor's services: what it does, apart
// from how it is asked over HTTP. connections is the token broker for Git
// provider connections, workers the Tendril worker tokens, webhook the
// delivery of events to the operator's URL, providers which providers
// exist and what each can do, users the operators' controls on accounts
// (arbor users, arbor sessions revoke, arbor audit).
//
// A service takes plain values and a context, and answers with values and
// its own sentinel errors (connections.Error kinds, workers.ErrNotFound,
// …). None of them imports Fiber, fasthttp or anything under gateway/: the
// HTTP layer (gateway/) calls them, and maps their errors to HTTP answers
// in one place per surface (gateway/httperr codes). TestServicesSpeakNoHTTP
// keeps it so.
package service
