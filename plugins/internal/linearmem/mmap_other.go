//go:build !linux

package linearmem

func newMapped(limit uint64) backing { return heap{limit: limit} }
