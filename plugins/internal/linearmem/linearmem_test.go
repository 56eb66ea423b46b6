package linearmem

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

const page = 64 << 10 // a wasm page

// TestConformance holds both backings to what wazero and the host rely on:
// the first allocation and every growth are zeroed, growth keeps the
// contents, the limit is refused and reported, and Peak is the largest size
// granted.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(uint64) *Memory
	}{
		{"New", New},
		{"heap", newHeap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.new(16 * page)
			defer m.Free()
			b := m.Reallocate(2 * page)
			if len(b) != 2*page || m.Len() != 2*page {
				t.Fatalf("first allocation: len %d, Len %d; want %d", len(b), m.Len(), 2*page)
			}
			if !allZero(b) {
				t.Fatal("first allocation is not zeroed")
			}
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := bytes.Clone(b)
			for _, size := range []uint64{3 * page, 5 * page, 11 * page, 16 * page} {
				g := m.Reallocate(size)
				if uint64(len(g)) != size {
					t.Fatalf("grow to %d pages: len %d", size/page, len(g))
				}
				if !bytes.Equal(g[:len(want)], want) {
					t.Fatalf("grow to %d pages lost the contents", size/page)
				}
				if !allZero(g[len(want):]) {
					t.Fatalf("grow to %d pages: the new bytes are not zero", size/page)
				}
				g[len(g)-1] = 0xAB // touch the last byte granted
				want = bytes.Clone(g)
			}
			if m.Denied() {
				t.Fatal("Denied before any refusal")
			}
			if g := m.Reallocate(17 * page); g != nil {
				t.Fatalf("grow past the limit returned %d bytes, want nil", len(g))
			}
			if !m.Denied() || m.Peak() != 16*page || m.Len() != 16*page {
				t.Fatalf("after the refusal: Denied %v, Peak %d, Len %d; want true, %d, %d", m.Denied(), m.Peak(), m.Len(), 16*page, 16*page)
			}
		})
	}
}

// TestMappedOutsideHeapAndReturned checks why the mapping exists on Linux:
// touching the guest's memory adds nothing to the Go heap, the memory does
// not move when it grows, and Free unmaps it.
func TestMappedOutsideHeapAndReturned(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the mapping is Linux-only; elsewhere New is the heap backing")
	}
	const size = 32 << 20
	before := heapObjects()
	m := New(64 << 20)
	b := m.Reallocate(size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	grown := m.Reallocate(48 << 20)
	if uintptr(unsafe.Pointer(unsafe.SliceData(grown))) != base {
		t.Fatal("the mapping moved when it grew")
	}
	if d := heapObjects() - before; d > size/4 {
		t.Fatalf("the Go heap grew by %d bytes for a %d-byte guest memory; it should live outside the heap", d, size)
	}
	if !inMaps(t, base) {
		t.Fatalf("no mapping at %#x in /proc/self/maps", base)
	}
	m.Free()
	if inMaps(t, base) {
		t.Fatalf("the mapping at %#x is still there after Free", base)
	}
	m.Free() // a second Free does nothing
}

func heapObjects() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// inMaps reports whether a mapping of this process starts at addr.
func inMaps(t *testing.T, addr uintptr) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		start, _, ok := strings.Cut(line, "-")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(start, 16, 64); err == nil && uintptr(v) == addr {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
