// Command missingexport is an ABI v1 plugin written without the SDK that
// forgets the exchange export and gets the user export's signature wrong.
package main

import "unsafe"

var buf [64]byte

//go:wasmexport arbor_abi_v1
func marker() uint32 { return 1 }

//go:wasmexport arbor_alloc
func alloc(uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport arbor_authorize
func authorize(uint32, uint32) uint64 { return 0 }

//go:wasmexport arbor_user
func user(uint32) uint64 { return 0 }

func main() {}
