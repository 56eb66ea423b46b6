package linearmem

import "syscall"

// mapped reserves the whole limit as one private anonymous mapping.
// MAP_NORESERVE: nothing is committed (or counted against overcommit) until
// the guest touches a page, and the kernel hands out zeroed pages, which
// is what wasm requires of new memory.
type mapped struct {
	region []byte // the whole reservation; nil once freed or if mmap failed
}

func newMapped(limit uint64) backing {
	if limit == 0 {
		return heap{limit: 0}
	}
	b, err := syscall.Mmap(-1, 0, int(limit), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		// Address space refused (a ulimit -v, say): the heap still works.
		return heap{limit: limit}
	}
	return &mapped{region: b}
}

func (m *mapped) grow(buf []byte, size uint64) []byte {
	if m.region == nil || size > uint64(len(m.region)) {
		return nil
	}
	return m.region[:size:size] // buf is a prefix of region: nothing to copy
}

func (m *mapped) free([]byte) {
	if m.region != nil {
		_ = syscall.Munmap(m.region)
		m.region = nil
	}
}
