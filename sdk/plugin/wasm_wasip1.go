//go:build wasip1

package plugin

// The exports and imports of ABI v1 (see package sdk/abi). Export names must
// be literal in the directives; a test in package plugins checks that they
// match the abi constants by loading a plugin built with this file.

import (
	"unsafe"

	"github.com/vintner/arbor/sdk/abi"
)

//go:wasmimport arbor_v1 http_do
func hostHTTPDo(req unsafe.Pointer, reqLen uint32, buf unsafe.Pointer, bufCap uint32) uint32

//go:wasmimport arbor_v1 http_take
func hostHTTPTake(buf unsafe.Pointer, bufCap uint32) int32

//go:wasmimport arbor_v1 log
func hostLog(level int32, msg unsafe.Pointer, msgLen uint32)

var (
	// inBuf receives requests (arbor_alloc); outBuf holds the last result.
	// Both stay referenced, and Go's collector does not move objects, so the
	// addresses handed to the host stay valid until the next call.
	inBuf  = make([]byte, 0, 4096)
	outBuf = make([]byte, 0, 4096)
	// respBuf receives http_do responses; it grows to the largest seen.
	respBuf = make([]byte, 16<<10)
)

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport arbor_abi_v1
func exportMarker() uint32 { return uint32(Implemented(current())) }

//go:wasmexport arbor_alloc
func exportAlloc(size uint32) uint32 {
	if uint32(cap(inBuf)) < size {
		inBuf = make([]byte, size)
	}
	inBuf = inBuf[:size]
	return addr(inBuf[:cap(inBuf)])
}

//go:wasmexport arbor_authorize
func exportAuthorize(ptr, n uint32) uint64 { return call(abi.OpAuthorize, ptr, n) }

//go:wasmexport arbor_exchange
func exportExchange(ptr, n uint32) uint64 { return call(abi.OpExchange, ptr, n) }

//go:wasmexport arbor_refresh
func exportRefresh(ptr, n uint32) uint64 { return call(abi.OpRefresh, ptr, n) }

//go:wasmexport arbor_revoke
func exportRevoke(ptr, n uint32) uint64 { return call(abi.OpRevoke, ptr, n) }

//go:wasmexport arbor_user
func exportUser(ptr, n uint32) uint64 { return call(abi.OpUser, ptr, n) }

//go:wasmexport arbor_repos
func exportRepos(ptr, n uint32) uint64 { return call(abi.OpRepos, ptr, n) }

// arbor_groups was added within v1; a host built before it never calls it.
//
//go:wasmexport arbor_groups
func exportGroups(ptr, n uint32) uint64 { return call(abi.OpGroups, ptr, n) }

// arbor_git_host was added within v1 after arbor_groups; a host built
// before it never calls it.
//
//go:wasmexport arbor_git_host
func exportGitHost(ptr, n uint32) uint64 { return call(abi.OpGitHost, ptr, n) }

func call(op abi.Op, ptr, n uint32) uint64 {
	var in []byte
	if n > 0 {
		if ptr != addr(inBuf[:cap(inBuf)]) || n > uint32(len(inBuf)) {
			outBuf = (&abi.Result{Code: abi.CodeInvalidRequest,
				Message: "the request is not in the buffer arbor_alloc returned"}).AppendABI(outBuf[:0])
			return uint64(addr(outBuf))<<32 | uint64(len(outBuf))
		}
		in = inBuf[:n]
	}
	outBuf = dispatch(op, in, outBuf[:0])
	return uint64(addr(outBuf))<<32 | uint64(len(outBuf))
}

func roundTrip(req []byte) ([]byte, error) {
	n := hostHTTPDo(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)),
		unsafe.Pointer(unsafe.SliceData(respBuf)), uint32(len(respBuf)))
	if n <= uint32(len(respBuf)) {
		return respBuf[:n], nil
	}
	respBuf = make([]byte, n)
	if m := hostHTTPTake(unsafe.Pointer(unsafe.SliceData(respBuf)), n); m != int32(n) {
		return nil, &Error{Code: abi.CodeInternal, Message: "http_take did not return the held response"}
	}
	return respBuf, nil
}

func hostWrite(level Level, msg string) {
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}
