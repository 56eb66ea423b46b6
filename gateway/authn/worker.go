package authn

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/service/workers"
)

// Workers is the worker service as the chain's worker authenticator
// (KindWorker): it reads X-Worker-ID and X-Worker-Token where fasthttp
// keeps them and asks the service.
func Workers(s *workers.Service) Authenticator { return workerCredentials{s} }

type workerCredentials struct{ s *workers.Service }

// Authenticate sorts the service's answers into the chain's outcomes:
// neither worker header is None; either sent twice is Refused; a store
// that is unavailable or closed is Failed (the worker may retry); every
// other failure is Refused.
func (cr workerCredentials) Authenticate(c *fiber.Ctx) (Identity, Outcome, error) {
	h := &c.Request().Header
	// PeekAll reuses one buffer: take each answer before the next call.
	// The values themselves point into the header.
	ids := h.PeekAll(workers.HeaderID)
	nIDs, rawID := len(ids), []byte(nil)
	if nIDs == 1 {
		rawID = ids[0]
	}
	toks := h.PeekAll(workers.HeaderToken)
	if nIDs == 0 && len(toks) == 0 {
		return Identity{}, None, nil
	}
	if nIDs != 1 || len(toks) != 1 {
		return Identity{}, Refused, workers.ErrUnauthorized // missing or sent twice
	}
	id, err := cr.s.Authenticate(c.UserContext(), rawID, toks[0], func() string { return clientAddr(c) })
	switch {
	case err == nil:
		return Identity{Kind: KindWorker, UserID: id.UserID, WorkerID: id.WorkerID}, Authenticated, nil
	case errors.Is(err, data.ErrUnavailable), errors.Is(err, data.ErrClosed):
		return Identity{}, Failed, err
	}
	return Identity{}, Refused, err
}

// clientAddr is the client's address as the gateway's middleware found it,
// or the peer's outside that middleware (c.IP() points into fasthttp's
// buffers, hence the copy).
func clientAddr(c *fiber.Ctx) string {
	if addr := gateway.ClientIP(c); addr != "" {
		return addr
	}
	return strings.Clone(c.IP())
}
