// Package api is Arbor's own JSON APIs, the ones a program calls with a
// session cookie, a CLI bearer token or a service credential: the Git
// provider connections (/api/providers/...), the workers (/api/workers),
// the CLI logins (/api/auth/...), who is signed in (/auth/whoami). Each
// surface is a file with its routes; the services (package service/...) do
// the work and answer with their own errors, and answer.go maps those
// errors to HTTP answers (gateway/httperr) in one place, for the pages
// (package gateway/pages) too: Answer for every service, CLIAnswer its CLI
// login part, and the OAuth-format answers of the RFC 8628 endpoints.
package api
