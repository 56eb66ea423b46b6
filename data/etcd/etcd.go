package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/watchers"
)

// Defaults for Config.
const (
	DefaultRoot           = "/arbor/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// Config says where the etcd cluster is and how to reach it.
type Config struct {
	// Endpoints are the cluster's client URLs, for example
	// "https://10.0.0.1:2379" (a bare host:port means http). Required.
	Endpoints []string `json:"endpoints" yaml:"endpoints"`
	// Root is the prefix of every key the store writes, so that several
	// Arbor deployments (or Arbor and other programs) can share a cluster.
	// A missing trailing "/" is added. Default: DefaultRoot ("/arbor/").
	Root string `json:"root" yaml:"root"`
	// DialTimeout bounds connecting to the cluster in Open. Default:
	// DefaultDialTimeout (5s).
	DialTimeout time.Duration `json:"dial_timeout" yaml:"dial_timeout"`
	// RequestTimeout bounds every store method, retries included; a method
	// that runs out of it returns data.ErrUnavailable. Default:
	// DefaultRequestTimeout (5s).
	RequestTimeout time.Duration `json:"request_timeout" yaml:"request_timeout"`
	// Username and Password authenticate to etcd (etcd's own users, not
	// Arbor's). Both or neither. Default: no authentication.
	Username string `json:"username" yaml:"username"`
	Password string `json:"password" yaml:"password"`
	// TLS configures the client side of TLS. Default: plain text unless an
	// endpoint is https://, in which case the system roots are trusted.
	TLS TLSConfig `json:"tls" yaml:"tls"`
}

// TLSConfig names the PEM files for TLS to etcd. There is deliberately no
// way to skip verification of the server's certificate.
type TLSConfig struct {
	// CAFile is the CA bundle that signed the servers' certificates.
	// Default: the system roots.
	CAFile string `json:"ca_file" yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key for etcd's
	// --client-cert-auth. Both or neither. Default: none.
	CertFile string `json:"cert_file" yaml:"cert_file"`
	KeyFile  string `json:"key_file" yaml:"key_file"`
	// ServerName is the name to verify in the servers' certificates.
	// Default: the host of the endpoint.
	ServerName string `json:"server_name" yaml:"server_name"`
}

func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// withDefaults validates c and fills in its defaults. Errors say which
// field to set.
func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, errors.New("etcd: no endpoints: set Endpoints to the cluster's client URLs (for example https://10.0.0.1:2379)")
	}
	secure := false
	for _, ep := range c.Endpoints {
		scheme, err := endpointScheme(ep)
		if err != nil {
			return c, err
		}
		secure = secure || scheme == "https" || scheme == "unixs"
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if strings.Contains(c.Root, "\x00") {
		return c, errors.New("etcd: Root contains a NUL byte: set Root to a key prefix such as /arbor/")
	}
	if !strings.HasSuffix(c.Root, "/") {
		c.Root += "/"
	}
	switch {
	case c.DialTimeout < 0:
		return c, fmt.Errorf("etcd: DialTimeout %s is negative: leave it 0 for %s or set a positive duration", c.DialTimeout, DefaultDialTimeout)
	case c.DialTimeout == 0:
		c.DialTimeout = DefaultDialTimeout
	}
	switch {
	case c.RequestTimeout < 0:
		return c, fmt.Errorf("etcd: RequestTimeout %s is negative: leave it 0 for %s or set a positive duration", c.RequestTimeout, DefaultRequestTimeout)
	case c.RequestTimeout == 0:
		c.RequestTimeout = DefaultRequestTimeout
	}
	if (c.Username == "") != (c.Password == "") {
		return c, errors.New("etcd: Username and Password go together: set both, or neither for a cluster without authentication")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return c, errors.New("etcd: TLS.CertFile and TLS.KeyFile go together: set both for a client certificate, or neither")
	}
	if c.TLS.enabled() && !secure {
		return c, errors.New("etcd: TLS files are set but no endpoint is https://: write the endpoints as https://host:port")
	}
	return c, nil
}

func endpointScheme(ep string) (string, error) {
	if ep == "" {
		return "", errors.New("etcd: an endpoint is empty: set Endpoints to URLs such as https://10.0.0.1:2379")
	}
	if !strings.Contains(ep, "://") {
		return "", nil // host:port
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("etcd: endpoint %q is not a URL (%v): write it as https://host:port", ep, err)
	}
	switch u.Scheme {
	case "http", "https", "unix", "unixs":
		return u.Scheme, nil
	}
	return "", fmt.Errorf("etcd: endpoint %q has scheme %q: use http://, https://, unix:// or unixs://", ep, u.Scheme)
}

// tlsConfig builds the client's TLS configuration, or nil for plain text.
func (c Config) tlsConfig() (*tls.Config, error) {
	secure := c.TLS.enabled()
	for _, ep := range c.Endpoints {
		if s, _ := endpointScheme(ep); s == "https" || s == "unixs" {
			secure = true
		}
	}
	if !secure {
		return nil, nil
	}
	if !c.TLS.enabled() {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	info := transport.TLSInfo{
		CertFile:      c.TLS.CertFile,
		KeyFile:       c.TLS.KeyFile,
		TrustedCAFile: c.TLS.CAFile,
		ServerName:    c.TLS.ServerName,
	}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd: loading TLS files (CAFile %q, CertFile %q, KeyFile %q): %w", c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile, err)
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc, nil
}

// Options configures the store's behaviour. The zero value is ready to use.
type Options struct {
	// Now is the store's clock: records whose ExpiresAt is at or before
	// Now() read as data.ErrNotFound, and leases are sized from it. Default:
	// time.Now. Tests pass a fake clock.
	Now func() time.Time
	// Logger receives the store's own messages (watch restarts). Default:
	// slog.Default().
	Logger *slog.Logger
	// LockTTL is the TTL of the lease behind the store's locks (Lock): how
	// long a lock outlives a replica that died holding it, or was cut off
	// from the cluster. It is rounded up to whole seconds. Default:
	// data.LockTTL (10s).
	LockTTL time.Duration
}

// Store is a data.Store on an etcd cluster. It is safe for concurrent use;
// any number of Stores (in one process or on many replicas) may share a
// cluster and Root.
type Store struct {
	client     *clientv3.Client
	ownsClient bool
	root       string
	timeout    time.Duration
	now        func() time.Time
	logger     *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	stopWatch context.CancelFunc
	watching  sync.WaitGroup // the watches, see watch.go

	leases          leases       // lease per expiry bucket, see lease.go
	owners          ownerMemo    // id -> owning user, see keys.go
	sessionWatchers watchers.Set // WatchSessions, see watch.go
	workerWatchers  watchers.Set // WatchWorkers, see watch.go
	handedSessions  handedOut    // sessions read through this store, see watch.go
	handedWorkers   handedOut    // workers read through this store, see watch.go
	userWatchers    watchers.Set // WatchUsers, see watch.go
	handedUsers     handedOut    // users read through this store, see watch.go
	locks           lockState    // Lock, see locks.go

	// stripes serialise this store's writes of one record (hashed by
	// key), so that its own writers do not race each other's
	// compare-and-swap: only writers on other replicas can make one fail.
	stripes [256]chan struct{}
	// auditSeq is the audit counter as last seen, so that an append is
	// one round trip unless another replica appended meanwhile.
	auditSeq atomic.Pointer[mvccpb.KeyValue]
}

var _ data.Store = (*Store)(nil)

// Open connects to the cluster cfg names and returns a store on it. It
// fails with data.ErrUnavailable if the cluster does not answer within
// cfg.DialTimeout.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tc,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		Context:     ctx,
		// Reconnect to a member that comes back within seconds, not
		// grpc's default of up to two minutes.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: cfg.DialTimeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connecting to %s: %w: %w", strings.Join(cfg.Endpoints, ","), data.ErrUnavailable, err)
	}
	s, err := newStore(ctx, client, cfg, opts)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.ownsClient = true
	return s, nil
}

// New returns a store that uses client, which stays the caller's: Close
// leaves it open. cfg.Endpoints, the dial and TLS settings are ignored.
func New(ctx context.Context, client *clientv3.Client, cfg Config, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("etcd: New needs a client: pass a *clientv3.Client or use Open")
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = client.Endpoints()
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{"client"} // validated only for its presence
	}
	cfg.TLS = TLSConfig{}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return newStore(ctx, client, cfg, opts)
}

func newStore(ctx context.Context, client *clientv3.Client, cfg Config, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{
		client:  client,
		root:    cfg.Root,
		timeout: cfg.RequestTimeout,
		now:     opts.Now,
		logger:  opts.Logger,
	}
	s.leases.init(s)
	s.locks.init(opts.LockTTL)
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	// The revision to watch from: every write after Open returns is after
	// it, so watchers registered later miss nothing however slowly the
	// watch itself starts.
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := client.Get(rctx, s.root+keyAuditSeq)
	if err != nil {
		s.locks.stop()
		return nil, s.fail(ctx, "reading "+s.root+" (is the cluster reachable?)", err)
	}
	wctx, stop := context.WithCancel(context.Background())
	s.stopWatch = stop
	for _, w := range s.watches() {
		s.watching.Go(func() { s.watchPrefix(wctx, resp.Header.Revision+1, w) })
	}
	return s, nil
}

// Close stops the store's watch, revokes the lease behind its locks (so
// every lock it holds is released at once) and, if Open made the client,
// closes it. Methods called afterwards return data.ErrClosed; a second
// Close returns nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopWatch()
		s.watching.Wait()
		s.closeLocks()
		if s.ownsClient {
			err = s.client.Close()
			if errors.Is(err, context.Canceled) {
				err = nil
			}
		}
	})
	return err
}

// Ping makes a linearizable read, which needs a quorum: a member cut off
// from its peers is not ready.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.client.Get(ctx, s.root+keyAuditSeq, clientv3.WithCountOnly()); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// begin checks that the store is open and returns the context every call
// of one method shares: the caller's, bounded by RequestTimeout.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, errClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	ctx, cancel := s.reqCtx(ctx)
	return ctx, cancel, nil
}

func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func errClosed() error { return fmt.Errorf("etcd: %w", data.ErrClosed) }

// reqErr marks an error fail has already described.
type reqErr struct{ error }

func (e reqErr) Unwrap() error { return e.error }

// fail describes an error from the client: data.ErrClosed after Close, the
// caller's own cancellation as it is, and a timeout, an unreachable
// cluster or a cluster without a leader as data.ErrUnavailable. what says
// what failed and never holds a secret key.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	var done reqErr
	if errors.As(err, &done) {
		return err
	}
	switch {
	case s.closed.Load():
		return reqErr{fmt.Errorf("etcd: %s: %w", what, data.ErrClosed)}
	case errors.Is(context.Cause(ctx), context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return reqErr{fmt.Errorf("etcd: %s: %w", what, context.Canceled)}
	case unavailable(err):
		return reqErr{fmt.Errorf("etcd: %s: %w (%v)", what, data.ErrUnavailable, err)}
	}
	return reqErr{fmt.Errorf("etcd: %s: %w", what, err)}
}

// unavailable reports whether err means the cluster could not serve the
// request: not reached in time, no leader, no quorum, out of space.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrTimeout),
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail), errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost),
		errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrNoSpace),
		errors.Is(err, rpctypes.ErrTooManyRequests), errors.Is(err, rpctypes.ErrNotCapable):
		return true
	}
	var code codes.Code
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		return true
	}
	// A member shutting down answers with its raft node's error, which
	// etcd passes on without a code.
	return strings.Contains(err.Error(), "raft: stopped") || strings.Contains(err.Error(), "server stopped")
}

// lock takes the stripe of key, waiting at most until ctx ends.
func (s *Store) lock(ctx context.Context, what, key string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(key))
	c := s.stripes[h.Sum32()%uint32(len(s.stripes))]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, s.fail(ctx, what, ctx.Err())
	}
}

// Retrying compare-and-swap. An attempt reads, computes and commits a
// transaction guarded by the mod revisions it read; when the guard fails
// another write won, and the attempt runs again on fresh data.
const maxAttempts = 500

// ambiguousError is a commit whose member went away before answering;
// retry tries again (see commit).
type ambiguousError struct{ error }

func (e ambiguousError) Unwrap() error { return e.error }

// retry runs attempt until it is done or fails. what names the operation.
// An ambiguous commit is tried again after a pause, for as long as ctx
// (the request timeout) allows, without counting as a lost race.
func (s *Store) retry(ctx context.Context, what string, attempt func() (done bool, err error)) error {
	for i := 0; i < maxAttempts; i++ {
		done, err := attempt()
		var amb ambiguousError
		if errors.As(err, &amb) {
			select {
			case <-time.After(50*time.Millisecond + time.Duration(rand.Int64N(int64(50*time.Millisecond)))):
				i--
				continue
			case <-ctx.Done():
				return amb.error
			}
		}
		if err != nil || done {
			return err
		}
		if i >= 2 {
			// Back off with jitter so that many writers of one key do
			// not meet again in lockstep.
			d := time.Duration(rand.Int64N(int64(min(i, 50))*int64(200*time.Microsecond)) + 1)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return s.fail(ctx, what, ctx.Err())
			}
		}
	}
	return fmt.Errorf("etcd: %s: lost %d races for the same record in a row: %w", what, maxAttempts, data.ErrConflict)
}
