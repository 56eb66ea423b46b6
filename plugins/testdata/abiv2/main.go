// Command abiv2 pretends to be a plugin built for a future ABI version 2: it
// imports arbor_v2 and exports arbor_abi_v2, without the SDK.
package main

import "unsafe"

//go:wasmimport arbor_v2 http_do
func httpDo(req unsafe.Pointer, reqLen uint32, buf unsafe.Pointer, bufCap uint32) uint32

var buf [64]byte

//go:wasmexport arbor_abi_v2
func marker() uint32 { return 3 }

//go:wasmexport arbor_alloc
func alloc(uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport arbor_authorize
func authorize(uint32, uint32) uint64 { return 0 }

//go:wasmexport arbor_exchange
func exchange(uint32, uint32) uint64 {
	return uint64(httpDo(unsafe.Pointer(&buf[0]), 0, unsafe.Pointer(&buf[0]), uint32(len(buf))))
}

func main() {}
