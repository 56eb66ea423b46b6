// Package etcdtest starts real etcd members inside a test binary, for the
// tests of the etcd store and of anything that runs on it (replicated
// gateways, fault tests).
//
// A cluster listens on 127.0.0.1 only, on free ports chosen when it
// starts, with a data directory per member under a temporary directory.
// Its settings suit tests, not production: fast elections (25 ms ticks, a
// 250 ms election timeout), no fsync, and logs at level error. A member can
// be stopped and restarted on the same ports and data directory, so a test
// can take away a quorum and give it back.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/vintner/arbor/internal/freeport"
)

// Option changes how Start and New build a cluster.
type Option func(*options)

type options struct {
	members      int
	tickMs       uint
	electionMs   uint
	fsync        bool
	startTimeout time.Duration
}

// Members sets the number of members (default 1).
func Members(n int) Option { return func(o *options) { o.members = n } }

// Election sets the heartbeat tick and the election timeout (defaults
// 25 ms and 250 ms).
func Election(tick, election time.Duration) Option {
	return func(o *options) {
		o.tickMs, o.electionMs = uint(tick/time.Millisecond), uint(election/time.Millisecond)
	}
}

// Fsync makes the members fsync their WAL and backend as production etcd
// does (default off: the tests run on temporary directories).
func Fsync() Option { return func(o *options) { o.fsync = true } }

// StartTimeout bounds how long a start waits for the cluster to be ready
// (default 30s).
func StartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// Cluster is a running set of embedded etcd members.
type Cluster struct {
	opts    options
	dir     string
	ownDir  bool
	members []*Member
}

// Member is one embedded etcd server.
type Member struct {
	c       *Cluster
	index   int
	name    string
	dir     string
	client  url.URL
	peer    url.URL
	mu      sync.Mutex
	etcd    *embed.Etcd   // nil while stopped
	closing chan struct{} // closed when the last Stop has released the ports
	initial string        // the initial cluster, for the first start
}

// Start starts a cluster and closes it when the test ends. It fails the
// test if the cluster does not become ready.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	c, err := newCluster(t.TempDir(), false, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartCluster starts a cluster of n members; see Start.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	return Start(t, append([]Option{Members(n)}, opts...)...)
}

// New starts a cluster outside any one test (for TestMain); the caller
// must Close it, which also removes its temporary directory.
func New(opts ...Option) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, err
	}
	c, err := newCluster(dir, true, opts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func newCluster(dir string, ownDir bool, opts ...Option) (*Cluster, error) {
	o := options{members: 1, tickMs: 25, electionMs: 250, startTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.members < 1 {
		return nil, fmt.Errorf("etcdtest: %d members: a cluster needs at least one", o.members)
	}
	c := &Cluster{opts: o, dir: dir, ownDir: ownDir}
	var initial []string
	for i := range o.members {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		m := &Member{
			c:      c,
			index:  i,
			name:   fmt.Sprintf("m%d", i),
			dir:    filepath.Join(dir, fmt.Sprintf("m%d", i)),
			client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])},
			peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])},
		}
		initial = append(initial, m.name+"="+m.peer.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	// Start every member before waiting for any: a member of a cluster
	// is ready only once a quorum has met.
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, m := range c.members {
		if err := m.waitReady(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// freePorts returns n ports that were free a moment ago; etcd binds them
// later (internal/freeport: below the kernel's ephemeral range, so that no
// outgoing connection takes one meanwhile).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		p, err := freeport.Port()
		if err != nil {
			return nil, fmt.Errorf("etcdtest: finding a free port: %w", err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func (m *Member) config() *embed.Config {
	o := m.c.opts
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "etcdtest-" + filepath.Base(m.c.dir)
	cfg.ClusterState = embed.ClusterStateFlagNew // ignored once the data dir exists
	cfg.TickMs, cfg.ElectionMs = o.tickMs, o.electionMs
	cfg.UnsafeNoFsync = !o.fsync
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	cfg.StrictReconfigCheck = false
	return cfg
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return nil
	}
	e, err := embed.StartEtcd(m.config())
	if err != nil {
		return fmt.Errorf("etcdtest: starting member %s: %w", m.name, err)
	}
	m.etcd = e
	return nil
}

func (m *Member) waitReady() error {
	m.mu.Lock()
	e := m.etcd
	m.mu.Unlock()
	if e == nil {
		return fmt.Errorf("etcdtest: member %s is stopped", m.name)
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcdtest: member %s failed: %w", m.name, err)
	case <-time.After(m.c.opts.startTimeout):
		return fmt.Errorf("etcdtest: member %s not ready after %s", m.name, m.c.opts.startTimeout)
	}
}

// Endpoints returns the client URLs of every member, stopped or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.Endpoint())
	}
	return eps
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Member returns member i (0-based).
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Leader returns the index of the member that is leader, or -1 if no
// running member knows of one.
func (c *Cluster) Leader() int {
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e == nil {
			continue
		}
		lead := uint64(e.Server.Leader())
		if lead == 0 {
			continue
		}
		for j, o := range c.members {
			o.mu.Lock()
			oe := o.etcd
			o.mu.Unlock()
			if oe != nil && uint64(oe.Server.MemberID()) == lead {
				return j
			}
		}
	}
	return -1
}

// WaitLeader waits until a running member is leader and returns its index.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	for {
		if i := c.Leader(); i >= 0 {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("etcdtest: no leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// NewClient returns a client of the whole cluster; the caller closes it.
func (c *Cluster) NewClient() (*clientv3.Client, error) {
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdtest: client: %w", err)
	}
	return cl, nil
}

// Close stops every member (and removes the directory New made).
func (c *Cluster) Close() {
	for _, m := range c.members {
		m.Stop()
	}
	for _, m := range c.members {
		m.released()
	}
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

// Name is the member's name in the cluster (m0, m1, ...).
func (m *Member) Name() string { return m.name }

// Endpoint is the member's client URL.
func (m *Member) Endpoint() string { return m.client.String() }

// Running reports whether the member is started.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil
}

// Stop stops the member, keeping its data directory. Stopping a stopped
// member does nothing.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e == nil {
		return
	}
	// Leave the cluster at once: raft stops and requests fail. Closing
	// the listeners waits up to 5s for open streams (a client's watch), so
	// it goes on in the background; Restart and Cluster.Close wait for it.
	e.Server.HardStop()
	done := make(chan struct{})
	m.mu.Lock()
	m.closing = done
	m.mu.Unlock()
	go func() {
		defer close(done)
		e.Close()
	}()
}

// released waits until a stopped member has released its ports.
func (m *Member) released() {
	m.mu.Lock()
	c := m.closing
	m.mu.Unlock()
	if c != nil {
		<-c
	}
}

// Restart starts a stopped member again on its ports and data directory
// and waits until it has rejoined (which needs a quorum of running
// members). Restarting a running member does nothing.
func (m *Member) Restart() error {
	m.released()
	var err error
	// The kernel may take a moment to release the ports.
	for range 50 {
		if err = m.start(); err == nil || !errors.Is(err, errAddrInUse(err)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return m.waitReady()
}

// errAddrInUse returns err if it says an address is in use, else a
// sentinel that matches nothing.
func errAddrInUse(err error) error {
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		return err
	}
	return errNever
}

var errNever = errors.New("never")
