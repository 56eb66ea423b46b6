package gateway

import (
	"testing"
	"unsafe"

	"github.com/gofiber/fiber/v2"
)

// TestInternMethod: a standard method comes back as the package constant
// (not the caller's bytes, which fasthttp reuses), any other as a copy.
func TestInternMethod(t *testing.T) {
	for _, want := range []string{
		fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
		fiber.MethodPatch, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace,
	} {
		buf := []byte(want)
		got := internMethod(unsafe.String(&buf[0], len(buf)))
		if got != want || unsafe.StringData(got) != unsafe.StringData(want) {
			t.Errorf("internMethod(%q) = %q, not the constant", want, got)
		}
	}
	buf := []byte("PROPFIND")
	got := internMethod(unsafe.String(&buf[0], len(buf)))
	buf[0] = 'X'
	if got != "PROPFIND" {
		t.Errorf("internMethod(PROPFIND) = %q after its buffer changed: want a copy", got)
	}
}
