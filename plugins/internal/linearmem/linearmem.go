// Package linearmem backs a plugin instance's linear memory with a mapping
// of its own rather than the Go heap, and holds each instance to its own
// limit although the wazero runtime is shared.
//
// Why not the Go heap: a Go guest's memory is allocated whole when the
// instance is created (about 8 MiB for the built-in plugins) and, in
// wazero's default allocator, copied into a new slice each time it grows.
// On the host that is a burst of garbage that sets off a collection in the
// middle of the instantiation (a first call that took 10 ms took 20 when it
// did), and the memory of a closed instance stays with the Go heap until
// the scavenger returns it. A mapping reserves the limit's address range up
// front (no memory is committed until the guest touches a page), grows in
// place without copying, and is unmapped when the instance closes, so its
// pages go back to the kernel at once and the collector never sees them.
//
// On systems without the mapping (anything but Linux) New falls back to the
// heap, growing by doubling; both behave the same to the caller, which the
// package's conformance test checks.
//
// The one entry point is New. The Memory it returns is what wazero's
// experimental.MemoryAllocator hands back; wazero calls Free when the
// module instance closes, after which nothing may read the old buffer: the
// host copies everything it keeps out of guest memory before it releases
// an instance.
package linearmem

// Memory is one instance's linear memory. It is not safe for concurrent
// use; wazero calls it from the goroutine running the instance.
type Memory struct {
	buf    []byte
	limit  uint64
	peak   uint64 // largest size granted
	denied bool
	impl   backing
}

// backing is where the bytes live: a mapping or the Go heap.
type backing interface {
	// grow returns buf extended to size bytes (size > len(buf), size <=
	// limit), the new bytes zero, or nil if it cannot.
	grow(buf []byte, size uint64) []byte
	free(buf []byte)
}

// New returns a memory that refuses to grow beyond limit bytes. A refused
// growth makes the guest's memory.grow return -1 (a Go guest then dies with
// "out of memory"), and Denied reports it.
func New(limit uint64) *Memory {
	return &Memory{limit: limit, impl: newMapped(limit)}
}

// newHeap returns a memory on the Go heap, the fallback of New.
func newHeap(limit uint64) *Memory {
	return &Memory{limit: limit, impl: heap{limit: limit}}
}

// Reallocate implements experimental.LinearMemory: it returns the memory
// resized to size bytes, or nil if that is beyond the limit or the memory
// cannot grow.
func (m *Memory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.denied = true
		return nil
	}
	if size > uint64(len(m.buf)) {
		b := m.impl.grow(m.buf, size)
		if b == nil {
			m.denied = true
			return nil
		}
		m.buf = b
	} else {
		m.buf = m.buf[:size]
	}
	m.peak = max(m.peak, size)
	return m.buf
}

// Free implements experimental.LinearMemory: it gives the memory back. The
// memory must not be used after.
func (m *Memory) Free() {
	m.impl.free(m.buf)
	m.buf = nil
}

// Len is the memory's current size in bytes (0 once freed).
func (m *Memory) Len() uint64 { return uint64(len(m.buf)) }

// Peak is the largest size the memory was granted.
func (m *Memory) Peak() uint64 { return m.peak }

// Denied reports whether a growth was refused.
func (m *Memory) Denied() bool { return m.denied }

// heap keeps the bytes in the Go heap, doubling the capacity up to the
// limit when it must move them.
type heap struct{ limit uint64 }

func (h heap) grow(buf []byte, size uint64) []byte {
	if size <= uint64(cap(buf)) {
		// Bytes past len were zero when allocated and a shrink never
		// happens (wasm memory only grows), so they are still zero.
		return buf[:size]
	}
	b := make([]byte, size, min(max(size, 2*uint64(cap(buf))), h.limit))
	copy(b, buf)
	return b
}

func (heap) free([]byte) {}
