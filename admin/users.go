package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/users"
)

// operator is the audit actor of a change asked for over the socket when
// the peer's credentials are unknown (peerActor).
const operator = users.Actor

// maxUserBody bounds the body of a POST to /v1/users/…: a disable reason
// is at most users.MaxReason bytes.
const maxUserBody = 4 << 10

// Error codes of the users and audit endpoints (the `error` field).
const (
	CodeNoUser           = "no_user"           // 404: no user with that id or address
	CodeAmbiguous        = "ambiguous"         // 409: several users have that address
	CodeBadRequest       = "bad_request"       // 400: a body or parameter that does not parse
	CodeBadReason        = "bad_reason"        // 400: users.ErrBadReason
	CodeStoreUnavailable = "store_unavailable" // 503: data.ErrUnavailable
	CodeFailed           = "failed"            // 500: anything else; the message says what
)

type actorKey struct{}

// connActor puts the peer's audit actor in every request's context.
func connActor(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, actorKey{}, peerActor(c))
}

func actorOf(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return operator
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeUsersErr answers a users.Service error with its status and code.
func writeUsersErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, users.ErrNoUser):
		writeErr(w, http.StatusNotFound, CodeNoUser, err.Error())
	case errors.Is(err, users.ErrAmbiguous):
		writeErr(w, http.StatusConflict, CodeAmbiguous, err.Error())
	case errors.Is(err, users.ErrBadReason):
		writeErr(w, http.StatusBadRequest, CodeBadReason, err.Error())
	case errors.Is(err, users.ErrBadQuery):
		writeErr(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, data.ErrUnavailable):
		writeErr(w, http.StatusServiceUnavailable, CodeStoreUnavailable, err.Error()+"; is the store reachable?")
	default:
		writeErr(w, http.StatusInternalServerError, CodeFailed, err.Error())
	}
}

// disableBody is the body of POST /v1/users/{user}/disable.
type disableBody struct {
	Reason string `json:"reason"`
}

// UsersList is the answer of GET /v1/users.
type UsersList struct {
	Users []users.Summary `json:"users"`
}

func usersRoutes(mux *http.ServeMux, svc *users.Service) {
	if svc == nil {
		mux.HandleFunc("/v1/users", notSupported)
		mux.HandleFunc("/v1/users/", notSupported)
		mux.HandleFunc("/v1/audit", notSupported)
		return
	}
	mux.HandleFunc("GET /v1/users", func(w http.ResponseWriter, r *http.Request) {
		us, err := svc.List(r.Context())
		if err != nil {
			writeUsersErr(w, err)
			return
		}
		writeJSON(w, UsersList{Users: us})
	})
	mux.HandleFunc("GET /v1/users/{user}", func(w http.ResponseWriter, r *http.Request) {
		d, err := svc.Show(r.Context(), r.PathValue("user"))
		if err != nil {
			writeUsersErr(w, err)
			return
		}
		writeJSON(w, d)
	})
	change := func(do func(r *http.Request, id string) (users.Change, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ch, err := do(r, r.PathValue("user"))
			if err != nil {
				writeUsersErr(w, err)
				return
			}
			writeJSON(w, ch)
		}
	}
	mux.HandleFunc("POST /v1/users/{user}/disable", func(w http.ResponseWriter, r *http.Request) {
		var b disableBody
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUserBody))
		if err != nil {
			writeErr(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("the body is larger than %d bytes; a reason is at most %d", maxUserBody, users.MaxReason))
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				writeErr(w, http.StatusBadRequest, CodeBadRequest, `the body must be {"reason": "..."}: `+err.Error())
				return
			}
		}
		change(func(r *http.Request, id string) (users.Change, error) {
			return svc.Disable(r.Context(), actorOf(r), id, b.Reason)
		})(w, r)
	})
	mux.HandleFunc("POST /v1/users/{user}/enable", change(func(r *http.Request, id string) (users.Change, error) {
		return svc.Enable(r.Context(), actorOf(r), id)
	}))
	mux.HandleFunc("DELETE /v1/users/{user}", change(func(r *http.Request, id string) (users.Change, error) {
		return svc.Delete(r.Context(), actorOf(r), id)
	}))
	mux.HandleFunc("POST /v1/users/{user}/sessions/revoke", change(func(r *http.Request, id string) (users.Change, error) {
		return svc.RevokeSessions(r.Context(), actorOf(r), id)
	}))
	mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseAuditQuery(r.URL.Query())
		if err != nil {
			writeErr(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		page, err := svc.Audit(r.Context(), q)
		if err != nil {
			writeUsersErr(w, err)
			return
		}
		writeJSON(w, page)
	})
}

func notSupported(w http.ResponseWriter, _ *http.Request) {
	writeErr(w, http.StatusNotImplemented, "not_supported", "user administration is not available on this server")
}

// parseAuditQuery reads GET /v1/audit's parameters: user, type, since
// (RFC 3339), before (a Seq), limit.
func parseAuditQuery(v url.Values) (users.AuditQuery, error) {
	q := users.AuditQuery{UserID: v.Get("user"), Action: v.Get("type")}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("since=%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
		}
		q.Since = t
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, fmt.Errorf("before=%q: want an event's seq (a positive number), as the previous page's next", s)
		}
		q.Before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > users.MaxAuditLimit {
			return q, fmt.Errorf("limit=%q: want a number from 1 to %d", s, users.MaxAuditLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// Error is an error answer of the admin socket.
type Error struct {
	Status  int
	Code    string // the `error` field, e.g. CodeNoUser
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets callers test a users error with errors.Is (users.ErrNoUser,
// users.ErrAmbiguous, users.ErrBadReason, data.ErrUnavailable).
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeNoUser:
		return users.ErrNoUser
	case CodeAmbiguous:
		return users.ErrAmbiguous
	case CodeBadReason:
		return users.ErrBadReason
	case CodeStoreUnavailable:
		return data.ErrUnavailable
	}
	return nil
}

// call sends a request with an optional JSON body and decodes a JSON
// answer into out (at most 16 MiB). An error answer is an *Error.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://arbor"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (%s): %v", ErrNotRunning, c.path, err)
		}
		return err
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, 16<<20)
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if err := json.NewDecoder(lr).Decode(&eb); err != nil || eb.Message == "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error, Message: fmt.Sprintf("admin: %s %s: %s (see the server log)", method, path, resp.Status)}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error, Message: eb.Message}
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("admin: reading the answer to %s %s: %w", method, path, err)
	}
	return nil
}

func userPath(id string, rest string) string { return "/v1/users/" + url.PathEscape(id) + rest }

// Users lists every user (GET /v1/users).
func (c *Client) Users(ctx context.Context) ([]users.Summary, error) {
	var l UsersList
	err := c.call(ctx, http.MethodGet, "/v1/users", nil, &l)
	return l.Users, err
}

// User shows the user with id or e-mail address idOrEmail.
func (c *Client) User(ctx context.Context, idOrEmail string) (users.Detail, error) {
	var d users.Detail
	err := c.call(ctx, http.MethodGet, userPath(idOrEmail, ""), nil, &d)
	return d, err
}

// DisableUser disables a user and ends their access.
func (c *Client) DisableUser(ctx context.Context, id, reason string) (users.Change, error) {
	var ch users.Change
	err := c.call(ctx, http.MethodPost, userPath(id, "/disable"), disableBody{Reason: reason}, &ch)
	return ch, err
}

// EnableUser enables a disabled user.
func (c *Client) EnableUser(ctx context.Context, id string) (users.Change, error) {
	var ch users.Change
	err := c.call(ctx, http.MethodPost, userPath(id, "/enable"), nil, &ch)
	return ch, err
}

// DeleteUser deletes a user and everything that belongs to them.
func (c *Client) DeleteUser(ctx context.Context, id string) (users.Change, error) {
	var ch users.Change
	err := c.call(ctx, http.MethodDelete, userPath(id, ""), nil, &ch)
	return ch, err
}

// RevokeSessions ends every browser session and CLI login of a user.
func (c *Client) RevokeSessions(ctx context.Context, id string) (users.Change, error) {
	var ch users.Change
	err := c.call(ctx, http.MethodPost, userPath(id, "/sessions/revoke"), nil, &ch)
	return ch, err
}

// Audit reads a page of the audit trail, newest first (GET /v1/audit).
func (c *Client) Audit(ctx context.Context, q users.AuditQuery) (users.AuditPage, error) {
	v := url.Values{}
	if q.UserID != "" {
		v.Set("user", q.UserID)
	}
	if q.Action != "" {
		v.Set("type", q.Action)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Before != 0 {
		v.Set("before", strconv.FormatUint(q.Before, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p users.AuditPage
	err := c.call(ctx, http.MethodGet, path, nil, &p)
	return p, err
}
