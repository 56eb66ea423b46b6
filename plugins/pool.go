package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/vintner/arbor/plugins/internal/linearmem"
	"github.com/vintner/arbor/sdk/abi"
)

// maxResultBytes bounds a result the host copies out of a plugin.
const maxResultBytes = 32 << 20

// instance is one instantiated module. It is not safe for concurrent use:
// the pool hands it to one call at a time.
type instance struct {
	mod      api.Module
	mem      *linearmem.Memory
	stderr   *stderrBuf
	markerFn api.Function
	alloc    api.Function
	ops      [len(abi.Ops)]api.Function
	calls    int
	stack    [2]uint64
	reqBuf   []byte
}

// stderrBuf keeps the beginning of what a plugin writes to stderr (where
// the Go runtime reports panics and fatal errors).
type stderrBuf struct{ b []byte }

const stderrMax = 4 << 10

func (s *stderrBuf) Write(p []byte) (int, error) {
	if room := stderrMax - len(s.b); room > 0 {
		s.b = append(s.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (s *stderrBuf) reset() { s.b = s.b[:0] }

func (v *version) newInstance(ctx context.Context) (*instance, error) {
	// Each instance has its own limit although the runtime is shared; a
	// refused growth makes memory.grow return -1 and the Go runtime dies
	// with "out of memory", which callError reports.
	mem := linearmem.New(v.limits.memBytes)
	stderr := &stderrBuf{}
	ictx := context.WithValue(ctx, callKey{}, &callState{v: v, init: true})
	ictx = experimental.WithMemoryAllocator(ictx, experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory {
		return mem
	}))
	mod, err := v.instantiate(ictx, v.modCfg.WithStderr(stderr))
	if err != nil {
		msg := strings.TrimSpace(string(stderr.b))
		if msg != "" {
			return nil, fmt.Errorf("instantiating the module: %v (plugin stderr: %s)", err, firstLine(msg))
		}
		return nil, fmt.Errorf("instantiating the module: %v", err)
	}
	in := &instance{
		mod: mod, mem: mem, stderr: stderr,
		markerFn: mod.ExportedFunction(abi.ExportMarker),
		alloc:    mod.ExportedFunction(abi.ExportAlloc),
	}
	for _, o := range abi.Ops {
		if v.ops.Has(o) {
			in.ops[o] = mod.ExportedFunction(o.Export())
		}
	}
	v.created.Add(1)
	return in, nil
}

func (in *instance) close() { in.mod.Close(context.Background()) }

// instantiate creates a module instance from the compiled code, compiling
// the module again first if its code was released. The caller holds a pool
// slot, so the reaper does not release the code meanwhile.
func (v *version) instantiate(ctx context.Context, cfg wazero.ModuleConfig) (api.Module, error) {
	for {
		v.codeMu.RLock()
		if v.compiled != nil {
			mod, err := v.host.rt.InstantiateModule(ctx, v.compiled, cfg)
			v.codeMu.RUnlock()
			return mod, err
		}
		v.codeMu.RUnlock()
		if err := v.loadCode(ctx); err != nil {
			return nil, err
		}
	}
}

// loadCode compiles the module again after its code was released: from the
// on-disk compilation cache when the host has one (tens of milliseconds),
// else from scratch.
func (v *version) loadCode(ctx context.Context) error {
	v.codeMu.Lock()
	defer v.codeMu.Unlock()
	switch {
	case v.compiled != nil:
		return nil
	case v.codeClosed:
		return errors.New("the plugin version is closed")
	case v.module == nil:
		return errors.New("the compiled code was released but the module is not available to compile it again")
	}
	b, err := v.module()
	if err != nil {
		return fmt.Errorf("reading the module %s again to compile it: %w", v.man.Module, err)
	}
	key, compiled, err := v.host.compile(ctx, b)
	if err != nil {
		return fmt.Errorf("compiling the module %s again: %w", v.man.Module, err)
	}
	v.compiled, v.codeKey = compiled, key
	v.codeLoaded.Store(true)
	v.codeLoads.Add(1)
	return nil
}

// releaseCode gives up the version's hold on its compiled code (closed with the
// last holder) if the pool has no instance and
// nobody is instantiating or compiling (TryLock). The pool's mu is held.
func (v *version) releaseCode() bool {
	if !v.codeMu.TryLock() {
		return false
	}
	defer v.codeMu.Unlock()
	if v.compiled == nil || len(v.pool.slots) > 0 {
		return false
	}
	v.host.releaseCompiled(v.codeKey)
	v.compiled = nil
	v.codeLoaded.Store(false)
	v.codeReleases.Add(1)
	return true
}

// marker calls the ABI marker and returns the operations the module
// implements.
func (in *instance) marker(ctx context.Context) (abi.OpSet, error) {
	if err := in.markerFn.CallWithStack(ctx, in.stack[:]); err != nil {
		return 0, err
	}
	return abi.OpSet(uint32(in.stack[0])), nil
}

// abiViolation is returned (or panicked from host functions) when a plugin
// breaks the ABI's memory rules.
type abiViolation struct{ msg string }

func (e *abiViolation) Error() string { return "ABI violation: " + e.msg }

// invoke writes req into the plugin's buffer, calls the operation and
// returns a view of the result in guest memory, valid until the next call
// on this instance.
func (in *instance) invoke(ctx context.Context, op abi.Op, req []byte) ([]byte, error) {
	in.stack[0] = uint64(len(req))
	if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, err
	}
	ptr := uint32(in.stack[0])
	if ptr == 0 && len(req) > 0 {
		return nil, &abiViolation{abi.ExportAlloc + " returned 0"}
	}
	if !in.mod.Memory().Write(ptr, req) {
		return nil, &abiViolation{abi.ExportAlloc + " returned a buffer outside the plugin's memory"}
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(len(req))
	if err := in.ops[op].CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, err
	}
	rptr, rlen := uint32(in.stack[0]>>32), uint32(in.stack[0])
	if rlen == 0 {
		return nil, nil
	}
	if rlen > maxResultBytes {
		return nil, &abiViolation{fmt.Sprintf("%s returned a %d-byte result, more than %d MiB", op.Export(), rlen, maxResultBytes>>20)}
	}
	raw, ok := in.mod.Memory().Read(rptr, rlen)
	if !ok {
		return nil, &abiViolation{op.Export() + " returned a result outside the plugin's memory"}
	}
	return raw, nil
}

// pool is a bounded set of instances of one version. slots holds one token
// per live instance (idle, busy or being created); idle holds the free
// ones. Both have capacity PoolSize, so neither send ever blocks while its
// token is held.
//
// The pool grows on demand up to PoolSize and shrinks back to the warm
// count (Policy.KeepWarm, default 0) when idle: while it holds more than
// the warm count a timer runs, and each time it fires (every
// Policy.IdleTimeout) it closes as many idle instances as were never
// needed during that period (the fewest idle instances any acquire saw),
// but never below the warm count. Once the pool has had no instance at all
// for Policy.CodeIdleTimeout, the timer releases the version's compiled
// code too; the next instance compiles it again (version.instantiate). The
// timer is a time.AfterFunc, so no goroutine waits while the pool is at
// rest or closed.
type pool struct {
	v     *version
	idle  chan *instance
	slots chan struct{}
	warm  int
	// lowIdle is the fewest idle instances an acquire left behind since
	// the last reap (0 when an acquire had to create one); math.MaxInt64
	// when no call came.
	lowIdle atomic.Int64

	mu     sync.Mutex
	closed bool
	reaper *time.Timer // the scheduled reap, nil before the first
	armed  int         // what the scheduled reap is for: armNone, armInstances or armCode
	gen    uint64      // identifies the scheduled reap; an older one that fires does nothing
	// createdAtArm is version.created when the code reap was scheduled:
	// the code is released only if no instance was created since.
	createdAtArm uint64
	wg           sync.WaitGroup
}

// What a scheduled reap is for.
const (
	armNone = iota
	armInstances
	armCode
)

func newPool(v *version) *pool {
	n := v.host.policy.PoolSize
	p := &pool{v: v, idle: make(chan *instance, n), slots: make(chan struct{}, n), warm: v.host.policy.KeepWarm}
	p.lowIdle.Store(math.MaxInt64)
	return p
}

// noteIdle records that an acquire left n instances idle.
func (p *pool) noteIdle(n int64) {
	for {
		cur := p.lowIdle.Load()
		if n >= cur || p.lowIdle.CompareAndSwap(cur, n) {
			return
		}
	}
}

// settle schedules the reaper if the pool is not at rest (after the load's
// instances were created).
func (p *pool) settle() {
	p.mu.Lock()
	p.armLocked()
	p.mu.Unlock()
}

// armLocked schedules the reaper if the pool holds more than its warm
// count (an instance reap after IdleTimeout), or holds no instance but
// still has its compiled code (a code release after CodeIdleTimeout, if
// the policy releases code). A code reap already scheduled gives way to an
// instance reap. p.mu is held.
func (p *pool) armLocked() {
	if p.closed {
		return
	}
	want := armNone
	switch {
	case len(p.slots) > p.warm:
		want = armInstances
	case len(p.slots) == 0 && p.v.module != nil && p.v.codeLoaded.Load():
		want = armCode
	}
	if want == armNone || want == p.armed || p.armed == armInstances {
		return
	}
	if p.reaper != nil {
		p.reaper.Stop()
	}
	p.gen++
	gen := p.gen
	p.armed = want
	d := p.v.host.policy.IdleTimeout
	if want == armCode {
		d = p.v.host.policy.CodeIdleTimeout
		p.createdAtArm = p.v.created.Load()
	}
	p.reaper = time.AfterFunc(d, func() { p.reap(gen) })
}

// reap runs when the scheduled timer fires. An instance reap closes the
// instances that no call needed during the last idle period, down to the
// warm count; a code reap releases the compiled code if the pool still has
// no instance and none was created since. Either reschedules itself while
// the pool is not at rest.
//
// The memory freed is handed back to the OS at once (host.freeMemory): the
// process is idle, and otherwise it would stay resident until the
// runtime's scavenger reached it.
func (p *pool) reap(gen uint64) {
	p.mu.Lock()
	if p.closed || gen != p.gen {
		p.mu.Unlock()
		return
	}
	kind := p.armed
	p.armed = armNone
	freed := false
	switch kind {
	case armInstances:
		n := min(p.lowIdle.Swap(math.MaxInt64), int64(len(p.slots)-p.warm))
		for ; n > 0; n-- {
			select {
			case in := <-p.idle:
				in.close()
				<-p.slots
				p.v.reaped.Add(1)
				freed = true
			default:
				n = 0 // a call took the rest
			}
		}
	case armCode:
		if len(p.slots) == 0 && p.v.created.Load() == p.createdAtArm {
			freed = p.v.releaseCode()
		}
	}
	p.armLocked()
	p.mu.Unlock()
	if freed {
		p.v.host.freeMemory()
	}
}

func (p *pool) size() (live, idle int) { return len(p.slots), len(p.idle) }

// fill creates n instances synchronously and returns the first.
func (p *pool) fill(ctx context.Context, n int) (*instance, error) {
	var first *instance
	for range n {
		select {
		case p.slots <- struct{}{}:
		default:
			return first, nil
		}
		in, err := p.v.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		if first == nil {
			first = in
		}
		p.idle <- in
	}
	return first, nil
}

// acquire returns a free instance, creating one if the pool is not full,
// or waits until ctx ends.
func (p *pool) acquire(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		p.noteIdle(int64(len(p.idle)))
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		p.noteIdle(int64(len(p.idle)))
		return in, nil
	case p.slots <- struct{}{}:
		p.lowIdle.Store(0)
		in, err := p.v.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// recycle reasons.
const (
	keep = iota
	discardError
	recycleCalls
	recycleMemory
)

// release returns in to the pool, or closes it and starts a replacement.
func (p *pool) release(in *instance, why int) {
	p.mu.Lock()
	closed := p.closed
	if why == keep && !closed {
		p.idle <- in
		p.armLocked()
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	switch why {
	case discardError:
		p.v.discarded.Add(1)
	case recycleCalls:
		p.v.recycledCalls.Add(1)
	case recycleMemory:
		p.v.recycledMemory.Add(1)
	}
	in.close()
	<-p.slots
	if !closed {
		p.replace()
	}
}

// replace creates an instance in the background so that the next caller
// does not pay for instantiation.
func (p *pool) replace() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		return // a caller is already creating one
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.v.limits.timeout)
		defer cancel()
		in, err := p.v.newInstance(ctx)
		if err != nil {
			<-p.slots
			p.v.log.Warn("plugin: could not create a replacement instance; the next call will try again", "err", err)
			return
		}
		p.mu.Lock()
		closed := p.closed
		if !closed {
			p.idle <- in
			p.armLocked() // with KeepWarm 0, the replacement too closes when unused
		}
		p.mu.Unlock()
		if closed {
			in.close()
			<-p.slots
		}
	}()
}

// close closes every instance. It is called once no call holds the
// version, so no instance is busy.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop() // a reap already waiting for p.mu sees closed and returns
	}
	p.mu.Unlock()
	p.wg.Wait()
	for {
		select {
		case in := <-p.idle:
			in.close()
			<-p.slots
		default:
			return
		}
	}
}

// call runs one operation on an instance from the pool.
func (v *version) call(ctx context.Context, op abi.Op, msg abi.Message, secrets []string) (*abi.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, v.errorf(op, abi.CodeTimeout, false, err, "the caller's context ended before the call: %v", err)
	}
	actx, cancel := context.WithTimeout(ctx, v.host.policy.AcquireTimeout)
	in, err := v.pool.acquire(actx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, v.errorf(op, abi.CodeTimeout, false, ctx.Err(), "the caller's context ended while waiting for a free instance: %v", ctx.Err())
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, v.errorf(op, abi.CodeTimeout, true, err,
				"no instance became free within %s (pool size %d): the plugin is overloaded or its provider is slow",
				v.host.policy.AcquireTimeout, v.host.policy.PoolSize)
		}
		return nil, v.errorf(op, abi.CodeInternal, false, err, "could not create an instance: %v", err)
	}
	v.calls.Add(1)
	in.calls++
	in.stderr.reset()
	st := &callState{v: v, op: op, secrets: secrets}
	cctx, cancel := context.WithTimeout(ctx, v.limits.timeout)
	defer cancel()
	cctx = context.WithValue(cctx, callKey{}, st)

	in.reqBuf = msg.AppendABI(in.reqBuf[:0])
	raw, err := in.invoke(cctx, op, in.reqBuf)
	var res abi.Result
	if err == nil {
		if derr := res.UnmarshalABI(raw); derr != nil {
			err = &abiViolation{fmt.Sprintf("%s returned a malformed result envelope: %v", op.Export(), derr)}
		}
	}
	if err != nil {
		e := v.callError(ctx, cctx, op, in, err, st)
		v.pool.release(in, discardError)
		return nil, e
	}

	why := keep
	switch {
	case st.tainted != "" || res.Code == abi.CodeInternal || in.mod.IsClosed():
		why = discardError
		if st.tainted != "" {
			v.log.Warn("plugin: instance replaced after a sandbox violation", "op", op.String(), "reason", st.tainted)
		}
	case in.mem.Len() > v.limits.highWater:
		why = recycleMemory
	case in.calls >= v.limits.maxCalls:
		why = recycleCalls
	}
	v.pool.release(in, why)

	if res.Code != "" {
		msg := st.redact(res.Message)
		if len(msg) > 1024 {
			msg = msg[:1024] + "…"
		}
		return nil, &Error{Plugin: v.man.Name, Op: op, Code: res.Code, Message: msg, Retryable: res.Retryable, Status: res.Status,
			RetryAfter: retryAfter(res.Code, res.RetryAfter)}
	}
	return &res, nil
}

// callError turns a failed wasm call into an *Error and logs the plugin's
// stderr (redacted) when it crashed.
func (v *version) callError(ctx, cctx context.Context, op abi.Op, in *instance, err error, st *callState) *Error {
	var exit *sys.ExitError
	var viol *abiViolation
	stderr := strings.TrimSpace(st.redact(string(in.stderr.b)))
	switch {
	case ctx.Err() != nil:
		return v.errorf(op, abi.CodeTimeout, false, ctx.Err(), "the caller's context ended during the call: %v", ctx.Err())
	case errors.Is(cctx.Err(), context.DeadlineExceeded) || (errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded):
		return v.errorf(op, abi.CodeTimeout, true, context.DeadlineExceeded,
			"the call did not finish within %s; the instance was stopped and replaced", v.limits.timeout)
	case in.mem.Denied() || strings.Contains(stderr, "out of memory"):
		v.log.Warn("plugin: out of memory", "op", op.String(), "limit_mib", v.limits.memBytes>>20, "stderr", stderr)
		return v.errorf(op, abi.CodeInternal, false, err,
			"the plugin ran out of memory at its limit of %d MiB (it reached %d KiB); the instance was replaced "+
				"(the limit comes from limits.memory_pages, clamped by the operator's max_memory_pages)",
			v.limits.memBytes>>20, in.mem.Peak()>>10)
	case errors.As(err, &viol):
		return v.errorf(op, abi.CodeInternal, false, err, "%v; the instance was replaced", viol)
	}
	v.log.Warn("plugin: instance crashed", "op", op.String(), "err", firstLine(err.Error()), "stderr", stderr)
	what := "trapped (" + firstLine(err.Error()) + ")"
	switch {
	case strings.Contains(stderr, "all goroutines are asleep"):
		what = "deadlocked"
	case strings.HasPrefix(stderr, "panic:") || strings.Contains(stderr, "\npanic:"):
		what = "panicked"
	case strings.Contains(stderr, "out of memory"):
		what = "ran out of memory"
	case errors.As(err, &exit):
		what = fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	return v.errorf(op, abi.CodeInternal, false, err, "the plugin %s; the instance was replaced (its stderr is in the log)", what)
}

func (v *version) errorf(op abi.Op, code abi.Code, retryable bool, cause error, format string, args ...any) *Error {
	return &Error{Plugin: v.man.Name, Op: op, Code: code, Retryable: retryable, Err: cause, Message: fmt.Sprintf(format, args...)}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
