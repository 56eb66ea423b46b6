// Package admin serves operator commands to a running Arbor over a Unix
// socket in the data directory.
//
// # Why a socket
//
// bbolt holds an exclusive lock on its file while `arbor serve` runs, so
// `arbor backup` and `arbor keys rotate` cannot open the store themselves.
// They ask the running server instead. A Unix socket with mode 0600 in the
// data directory limits that to the user who runs Arbor (the same user who
// could read the store file anyway), needs no extra credentials, and is never
// reachable from the network, unlike an admin port.
//
// The same holds for the operators' controls on accounts (users.go: `arbor
// users`, `arbor sessions revoke`, `arbor audit`, package service/users).
// The socket tells who asked: the kernel's peer credentials name the
// connecting user id, which goes into the audit trail as the actor.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/users"
)

// SocketName is the socket's file name inside the data directory.
const SocketName = "arbor.sock"

// SocketPath returns the admin socket path for a data directory.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Handlers are the operations the server offers. A nil handler answers 501.
type Handlers struct {
	// Backup writes a consistent copy of the store to w.
	Backup func(w io.Writer) (int64, error)
	// BackupSize estimates the copy's size in bytes (for Content-Length), or -1.
	BackupSize func() int64
	// RotateKeys re-seals every sealed record under the newest key.
	RotateKeys func(ctx context.Context) (data.ResealStats, error)
	// ReloadPlugins re-reads the plugin directories (POST
	// /v1/plugins/reload). A plugin that fails to load keeps its previous
	// version serving and is reported in PluginReload.Errors.
	ReloadPlugins func(ctx context.Context) PluginReload
	// TLSStatus describes the certificates served (GET /v1/tls); nil
	// answers plain http (source "").
	TLSStatus func() TLSStatus
	// Users serves the users and audit endpoints (GET /v1/users, …);
	// nil answers 501.
	Users *users.Service
	// Version is reported by GET /v1/status.
	Version string
}

// PluginInfo describes one loaded plugin.
type PluginInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	SHA256  string `json:"sha256"`
}

// PluginReload is the result of a plugin reload: the plugins serving after
// it and one message per plugin that failed to load (each names the
// plugin; a failed plugin that was loaded before keeps its old version).
type PluginReload struct {
	Plugins []PluginInfo `json:"plugins"`
	Errors  []string     `json:"errors,omitempty"`
}

// Server is the admin endpoint.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// Listen creates the socket at path with mode 0600. A stale socket left by a
// crashed process is replaced; a live one (another Arbor on the same data
// directory) is an error.
func Listen(path string, h Handlers, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin: another arbor is serving on %s; stop it or use another data_dir", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin: removing stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	s := &Server{path: path, ln: ln, log: log}
	s.srv = &http.Server{Handler: s.routes(h), ReadHeaderTimeout: 10 * time.Second, ConnContext: connActor}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	return s, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Close stops the server, waiting for commands in flight (a backup) up to
// ctx's deadline, and removes the socket.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: code, Message: msg})
}

func (s *Server) routes(h Handlers) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"version": h.Version, "pid": os.Getpid()})
	})
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		if h.Backup == nil {
			writeErr(w, http.StatusNotImplemented, "not_supported", "this store backend has no file backup")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if h.BackupSize != nil {
			if n := h.BackupSize(); n >= 0 {
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			}
		}
		start := time.Now()
		n, err := h.Backup(w)
		if err != nil {
			// Headers are gone; the client sees a short body and fails its check.
			s.log.Error("backup failed", "err", err, "bytes", n)
			return
		}
		s.log.Info("backup taken", "bytes", n, "duration", time.Since(start))
	})
	mux.HandleFunc("POST /v1/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		if h.RotateKeys == nil {
			writeErr(w, http.StatusNotImplemented, "not_supported", "key rotation is not available")
			return
		}
		st, err := h.RotateKeys(r.Context())
		if err != nil {
			s.log.Error("key rotation failed", "err", err, "resealed", st.Resealed)
			writeErr(w, http.StatusInternalServerError, "rotate_failed", err.Error())
			return
		}
		s.log.Info("keys rotated", "total", st.Total, "resealed", st.Resealed, "current", st.Current)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /v1/plugins/reload", func(w http.ResponseWriter, r *http.Request) {
		if h.ReloadPlugins == nil {
			writeErr(w, http.StatusNotImplemented, "not_supported", "plugins are not available")
			return
		}
		res := h.ReloadPlugins(r.Context())
		if res.Plugins == nil {
			res.Plugins = []PluginInfo{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	tlsRoute(mux, h.TLSStatus)
	usersRoutes(mux, h.Users)
	return mux
}

// Client talks to a running server's admin socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// ErrNotRunning is returned when no server listens on the socket.
var ErrNotRunning = errors.New("admin: no running arbor on this data directory")

// Running reports whether a server answers on the socket.
func (c *Client) Running(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/v1/status")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://arbor"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (%s): %v", ErrNotRunning, c.path, err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var eb errorBody
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
		return nil, fmt.Errorf("admin: %s %s: %s: %s", method, path, resp.Status, eb.Message)
	}
	return resp, nil
}

// Backup streams a backup from the server into w and returns the byte
// count. It fails if the stream is shorter than the server announced.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/backup")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin: backup stream broke after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("admin: backup stream ended after %d of %d bytes; see the server log", n, resp.ContentLength)
	}
	return n, nil
}

// RotateKeys asks the server to re-seal every record under its newest key.
func (c *Client) RotateKeys(ctx context.Context) (data.ResealStats, error) {
	var st data.ResealStats
	resp, err := c.do(ctx, http.MethodPost, "/v1/keys/rotate")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("admin: reading rotation result: %w", err)
	}
	return st, nil
}

// ReloadPlugins asks the server to re-read its plugin directories and
// returns what serves afterwards and which plugins failed to load.
func (c *Client) ReloadPlugins(ctx context.Context) (PluginReload, error) {
	var res PluginReload
	resp, err := c.do(ctx, http.MethodPost, "/v1/plugins/reload")
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&res); err != nil {
		return res, fmt.Errorf("admin: reading plugin reload result: %w", err)
	}
	return res, nil
}
