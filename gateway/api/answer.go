package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/workers"
)

// Answer maps an error of a service (package service/...) to the answer a
// client gets: the one place where the services' errors become HTTP
// statuses, stable codes and messages, for the APIs and the pages alike.
// Every route that calls a service returns Answer(err). An error that is
// no service's is returned unchanged (the gateway's error handler
// classifies it with httperr.From: an internal failure is a 500); nil
// stays nil.
//
// The connections broker (a *connections.Error of any kind not listed is
// a 500):
//
//	ErrNotConnected         404 provider_not_connected
//	ErrReconnectRequired    409 provider_reconnect_required (with the reason)
//	ErrTokenRefused         409 provider_reconnect_required
//	ErrRateLimited          503 provider_rate_limited, Retry-After (refresh: Arbor's quota)
//	                        429 provider_rate_limited, Retry-After (repos: the user's quota)
//	ErrProviderRefused      502 provider_refused
//	ErrInvalidRequest       400 bad_request
//	ErrProviderUnavailable  503 provider_unavailable (refresh), 502 (repos)
//	ErrUnknownProvider      503 unknown_provider
//	ErrStoreUnavailable     503 store_unavailable
//	ErrRefreshTimeout       504 gateway_timeout
//	ErrLockTimeout          504 gateway_timeout
//
// The worker service:
//
//	workers.ErrNotFound     404 worker_not_found (also another user's worker)
//	workers.ErrBadName      400 invalid_name
func Answer(err error) error {
	var ce *connections.Error
	switch {
	case errors.As(err, &ce):
		return answerConnections(err, ce)
	case errors.Is(err, workers.ErrNotFound):
		return httperr.Wrap(err, http.StatusNotFound, client.CodeWorkerNotFound, "You have no worker with that id")
	case errors.Is(err, workers.ErrBadName):
		return httperr.Wrap(err, http.StatusBadRequest, client.CodeInvalidName, fmt.Sprintf("A worker name has 1 to %d characters and no control characters", workers.MaxName))
	}
	return err
}

// answerConnections is Answer for an error of the connections broker.
func answerConnections(err error, ce *connections.Error) error {
	p := ce.Provider
	switch ce.Kind {
	case connections.ErrNotConnected:
		return httperr.Wrap(err, http.StatusNotFound, connections.CodeNotConnected, "No "+p+" connection: connect it on the Integrations page")
	case connections.ErrReconnectRequired:
		msg := "The " + p + " connection must be reconnected on the Integrations page"
		if ce.Reason != "" {
			msg += ": " + ce.Reason
		}
		return httperr.Wrap(err, http.StatusConflict, connections.CodeReconnectRequired, msg)
	case connections.ErrTokenRefused:
		return httperr.Wrap(err, http.StatusConflict, connections.CodeReconnectRequired, "The provider refused the token; reconnect "+p+" on the Integrations page")
	case connections.ErrRateLimited:
		// A limit on Arbor's own refresh is Arbor's trouble (503); a
		// listing runs on the user's own token, so the quota spent is the
		// user's (429).
		status := http.StatusServiceUnavailable
		if ce.Op == connections.OpRepos {
			status = http.StatusTooManyRequests
		}
		secs := httperr.RetryAfterSeconds(ce.RetryAfter)
		in := strconv.FormatInt(secs, 10) + " seconds"
		if secs == 1 {
			in = "1 second"
		}
		return httperr.Wrap(err, status, connections.CodeProviderRateLimited,
			"The provider is rate limiting requests; try again in "+in).WithRetryAfter(time.Duration(secs) * time.Second)
	case connections.ErrProviderRefused:
		msg := "The provider refused to list the repositories"
		if ce.Status != 0 {
			msg += " (HTTP " + strconv.Itoa(ce.Status) + ")"
		}
		return httperr.Wrap(err, http.StatusBadGateway, connections.CodeProviderRefused,
			msg+"; retrying will not help. Arbor's operator can find the details in the log under this request id")
	case connections.ErrInvalidRequest:
		return httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadRequest, "The provider refused the request (a stale page cursor?)")
	case connections.ErrProviderUnavailable:
		if ce.Op == connections.OpRepos {
			return httperr.Wrap(err, http.StatusBadGateway, connections.CodeProviderUnavailable, "The provider did not list the repositories; try again in a moment")
		}
		return httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeProviderUnavailable, "The provider did not refresh the token; try again in a moment")
	case connections.ErrUnknownProvider:
		msg := "The " + p + " plugin is not loaded or not configured"
		if ce.Op == connections.OpRefresh {
			msg += "; the token cannot be refreshed"
		}
		return httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeUnknownProvider, msg)
	case connections.ErrStoreUnavailable:
		return httperr.StoreUnavailable(err, "Arbor could not read or write the connection; try again in a moment")
	case connections.ErrRefreshTimeout:
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeGatewayTimeout, "The token refresh took longer than the request could wait; it goes on and the next request will get its result")
	case connections.ErrLockTimeout:
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeGatewayTimeout, "Another replica's refresh of this token took longer than the refresh may wait; try again in a moment")
	}
	return httperr.Internal(err)
}
