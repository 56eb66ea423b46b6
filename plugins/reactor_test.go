package plugins_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// The host accepts any reactor, not only what Go's -buildmode=c-shared
// produces: _initialize is optional (a Rust cdylib has none), a command
// module (_start without _initialize) is refused with a message that says
// how to build a reactor, and an _initialize of the wrong type is refused.
// The modules are assembled here byte by byte, so the test needs no other
// toolchain; examples/gitea-rust runs a real Rust plugin.
func TestLoadReactorShapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		extra   []asmFunc
		refused []string // nil: it loads and serves
	}{
		{"no _initialize", nil, nil},
		{"_initialize", []asmFunc{{name: abi.ExportInitialize, typ: typeVoid}}, nil},
		{"_initialize and _start", []asmFunc{{name: abi.ExportInitialize, typ: typeVoid}, {name: "_start", typ: typeVoid}}, nil},
		{"command", []asmFunc{{name: "_start", typ: typeVoid}},
			[]string{"the module is a command (it exports _start but no _initialize)", "Rust: --crate-type cdylib"}},
		{"_initialize mistyped", []asmFunc{{name: abi.ExportInitialize, typ: typeAlloc, body: []byte{0x41, 0x00}}},
			[]string{"export _initialize has signature func(i32) i32, want func()"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeAsmPlugin(t, tc.extra)
			h, _ := newHost(t, plugins.Policy{})
			p, err := h.LoadDir(context.Background(), dir, plugins.PluginConfig{ClientID: clientID})
			in, ierr := plugins.Inspect(os.DirFS(dir), ".")
			if ierr != nil {
				t.Fatal(ierr)
			}
			if tc.refused != nil {
				if err == nil {
					p.Close()
					t.Fatal("the module loaded")
				}
				for _, want := range tc.refused {
					if !strings.Contains(err.Error(), want) || in.Problem == nil || !strings.Contains(in.Problem.Error(), want) {
						t.Errorf("load error %q\ninspect problem %v\nwant both to contain %q", err, in.Problem, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer p.Close()
			if in.Problem != nil {
				t.Errorf("inspect: %v", in.Problem)
			}
			v, err := p.AuthorizeParams(context.Background(), plugins.AuthorizeInput{Purpose: abi.PurposeLogin, State: "s"})
			if err != nil || v.Get("response_type") != "code" || v.Get("client_id") != "asm" {
				t.Fatalf("authorize: %v %v", v, err)
			}
			_, err = p.Exchange(context.Background(), plugins.ExchangeInput{Code: "c"})
			var pe *plugins.Error
			if !errors.As(err, &pe) || pe.Code != abi.CodeInvalidGrant || !strings.Contains(err.Error(), "no codes here") {
				t.Fatalf("exchange: %v, want the module's invalid_grant", err)
			}
		})
	}
}

// asmFunc is one exported function of an assembled module.
type asmFunc struct {
	name string
	typ  byte   // index into the type section
	body []byte // instructions, without the final end
}

// The type section of assembled modules.
const (
	typeMarker = iota // func() i32
	typeAlloc         // func(i32) i32
	typeOp            // func(i32, i32) i64
	typeVoid          // func()
)

// writeAsmPlugin writes plugin.json and asm.wasm: a login plugin with the
// exports ABI v1 needs (memory, marker, alloc, authorize, exchange, user)
// and extra. Its operations return fixed results stored in data segments.
func writeAsmPlugin(t *testing.T, extra []asmFunc) string {
	t.Helper()
	const inBuf, authRes, errRes = 1024, 2048, 4096
	auth := abi.AppendResult(nil, &abi.AuthorizeResult{Params: []abi.Param{{Name: "client_id", Value: "asm"}, {Name: "response_type", Value: "code"}}})
	fail := (&abi.Result{Code: abi.CodeInvalidGrant, Message: "no codes here"}).AppendABI(nil)
	result := func(ptr int64, b []byte) []byte { return append([]byte{0x42}, sleb(ptr<<32|int64(len(b)))...) } // i64.const
	ops := abi.OpSet(0).With(abi.OpAuthorize).With(abi.OpExchange).With(abi.OpUser)
	funcs := append([]asmFunc{
		{abi.ExportMarker, typeMarker, append([]byte{0x41}, sleb(int64(ops))...)},
		{abi.ExportAlloc, typeAlloc, append([]byte{0x41}, sleb(inBuf)...)},
		{"arbor_authorize", typeOp, result(authRes, auth)},
		{"arbor_exchange", typeOp, result(errRes, fail)},
		{"arbor_user", typeOp, result(errRes, fail)},
	}, extra...)

	vec := func(n int, items ...[]byte) []byte {
		b := uleb(uint64(n))
		for _, it := range items {
			b = append(b, it...)
		}
		return b
	}
	name := func(s string) []byte { return append(uleb(uint64(len(s))), s...) }
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
	}

	mod := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	mod = append(mod, section(1, vec(4,
		[]byte{0x60, 0, 1, 0x7f}, []byte{0x60, 1, 0x7f, 1, 0x7f}, []byte{0x60, 2, 0x7f, 0x7f, 1, 0x7e}, []byte{0x60, 0, 0}))...)
	var fsec, esec, csec [][]byte
	for i, f := range funcs {
		fsec = append(fsec, []byte{f.typ})
		esec = append(esec, append(append(name(f.name), 0x00), uleb(uint64(i))...))
		body := append(append([]byte{0x00}, f.body...), 0x0b) // no locals; end
		csec = append(csec, append(uleb(uint64(len(body))), body...))
	}
	esec = append(esec, append(name(abi.ExportMemory), 0x02, 0x00))
	mod = append(mod, section(3, vec(len(fsec), fsec...))...)
	mod = append(mod, section(5, vec(1, []byte{0x00, 0x01}))...) // one memory, min 1 page
	mod = append(mod, section(7, vec(len(esec), esec...))...)
	mod = append(mod, section(10, vec(len(csec), csec...))...)
	seg := func(at int64, b []byte) []byte {
		s := append([]byte{0x00, 0x41}, sleb(at)...)
		return append(append(append(s, 0x0b), uleb(uint64(len(b)))...), b...)
	}
	mod = append(mod, section(11, vec(2, seg(authRes, auth), seg(errRes, fail)))...)

	dir := t.TempDir()
	sum := sha256.Sum256(mod)
	man := `{"name": "asm", "display_name": "Assembled", "version": "1.0.0", "abi_version": 1, "module": "asm.wasm",
  "sha256": "` + hex.EncodeToString(sum[:]) + `", "kind": "login", "operations": ["authorize", "exchange", "user"],
  "endpoints": {"authorize_url": "https://asm.example/authorize", "token_url": "https://asm.example/token", "api_base": "https://asm.example/api"},
  "scopes": {"login": ["read"]}, "pkce": false, "allowed_hosts": [], "limits": {}}`
	if err := os.WriteFile(filepath.Join(dir, "asm.wasm"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func uleb(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
