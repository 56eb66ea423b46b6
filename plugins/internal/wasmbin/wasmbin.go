// Package wasmbin reads the import, export, type, function and memory
// sections of a WebAssembly binary without compiling it.
//
// The host checks a plugin's shape (ABI version, exports, signatures,
// initial memory) before handing it to wazero, because compiling a 4 MB
// module takes over a second: a module built for another ABI version, or
// missing an export, is refused in a millisecond. Everything else in the
// binary is skipped; wazero decodes and validates the whole module when the
// checks pass.
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

// ValType is a value type byte (0x7f i32, 0x7e i64, …).
type ValType byte

// Value types.
const (
	I32       ValType = 0x7f
	I64       ValType = 0x7e
	F32       ValType = 0x7d
	F64       ValType = 0x7c
	V128      ValType = 0x7b
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6f
)

func (t ValType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("type(%#x)", byte(t))
}

// FuncType is a function signature.
type FuncType struct {
	Params, Results []ValType
}

// Equal reports whether t has exactly these params and results.
func (t FuncType) Equal(params, results []ValType) bool {
	return bytes.Equal(vt(t.Params), vt(params)) && bytes.Equal(vt(t.Results), vt(results))
}

func vt(s []ValType) []byte {
	b := make([]byte, len(s))
	for i, t := range s {
		b[i] = byte(t)
	}
	return b
}

// String formats t as "func(i32, i32) i64".
func (t FuncType) String() string {
	s := "func(" + joinTypes(t.Params) + ")"
	switch len(t.Results) {
	case 0:
		return s
	case 1:
		return s + " " + t.Results[0].String()
	}
	return s + " (" + joinTypes(t.Results) + ")"
}

// joinTypes formats s as "i32, i64".
func joinTypes(s []ValType) string {
	var b bytes.Buffer
	for i, t := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.String())
	}
	return b.String()
}

// Kinds of imports and exports.
const (
	KindFunc   = 0
	KindTable  = 1
	KindMemory = 2
	KindGlobal = 3
	KindTag    = 4
)

// Import is one imported function (other imports are counted, not kept).
type Import struct {
	Module, Name string
	Kind         byte
	Type         FuncType // for functions
}

// Module is what the host checks.
type Module struct {
	Imports []Import
	// Funcs are the exported functions by name.
	Funcs map[string]FuncType
	// Memories are the exported memories by name, with their minimum size
	// in pages.
	Memories map[string]uint32
}

var errTruncated = errors.New("truncated")

type reader struct {
	b []byte
}

func (r *reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errTruncated
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("LEB128 value overflows 32 bits")
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)) {
		return nil, errTruncated
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	p, err := r.bytes(n)
	return string(p), err
}

func (r *reader) limits() (min uint32, err error) {
	flag, err := r.byte()
	if err != nil {
		return 0, err
	}
	if flag > 3 {
		return 0, fmt.Errorf("unsupported limits flag %#x (64-bit memory?)", flag)
	}
	if min, err = r.u32(); err != nil {
		return 0, err
	}
	if flag&1 != 0 {
		if _, err = r.u32(); err != nil {
			return 0, err
		}
	}
	return min, nil
}

func (r *reader) valTypes() ([]ValType, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errTruncated
	}
	ts := make([]ValType, n)
	for i := range ts {
		c, err := r.byte()
		if err != nil {
			return nil, err
		}
		ts[i] = ValType(c)
	}
	return ts, nil
}

// Parse reads b's sections. It returns an error for a binary that is not
// WebAssembly or whose relevant sections are malformed.
func Parse(b []byte) (*Module, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (bad magic number)")
	}
	if b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return nil, fmt.Errorf("unsupported WebAssembly binary version %d", b[4])
	}
	m := &Module{Funcs: map[string]FuncType{}, Memories: map[string]uint32{}}
	var (
		types       []FuncType
		funcTypes   []uint32 // imported functions first, then defined ones
		memMins     []uint32 // imported memories first, then defined ones
		exportKinds []byte
		exportNames []string
		exportIdx   []uint32
	)
	r := &reader{b: b[8:]}
	for len(r.b) > 0 {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		s := &reader{b: body}
		switch id {
		case 1: // type
			err = vec(s, func() error {
				form, err := s.byte()
				if err != nil {
					return err
				}
				if form != 0x60 {
					return fmt.Errorf("unsupported type form %#x", form)
				}
				var t FuncType
				if t.Params, err = s.valTypes(); err != nil {
					return err
				}
				t.Results, err = s.valTypes()
				types = append(types, t)
				return err
			})
		case 2: // import
			err = vec(s, func() error {
				var im Import
				var err error
				if im.Module, err = s.name(); err != nil {
					return err
				}
				if im.Name, err = s.name(); err != nil {
					return err
				}
				if im.Kind, err = s.byte(); err != nil {
					return err
				}
				switch im.Kind {
				case KindFunc:
					ti, err := s.u32()
					if err != nil {
						return err
					}
					if int(ti) >= len(types) {
						return fmt.Errorf("import %s.%s: type index %d out of range", im.Module, im.Name, ti)
					}
					im.Type = types[ti]
					funcTypes = append(funcTypes, ti)
				case KindTable:
					if _, err := s.byte(); err != nil {
						return err
					}
					_, err = s.limits()
				case KindMemory:
					min, lerr := s.limits()
					memMins = append(memMins, min)
					err = lerr
				case KindGlobal:
					if _, err := s.byte(); err != nil {
						return err
					}
					_, err = s.byte()
				case KindTag:
					if _, err := s.byte(); err != nil {
						return err
					}
					_, err = s.u32()
				default:
					return fmt.Errorf("unknown import kind %d", im.Kind)
				}
				m.Imports = append(m.Imports, im)
				return err
			})
		case 3: // function
			err = vec(s, func() error {
				ti, err := s.u32()
				if err == nil && int(ti) >= len(types) {
					err = fmt.Errorf("function type index %d out of range", ti)
				}
				funcTypes = append(funcTypes, ti)
				return err
			})
		case 5: // memory
			err = vec(s, func() error {
				min, err := s.limits()
				memMins = append(memMins, min)
				return err
			})
		case 7: // export
			err = vec(s, func() error {
				name, err := s.name()
				if err != nil {
					return err
				}
				kind, err := s.byte()
				if err != nil {
					return err
				}
				idx, err := s.u32()
				exportNames, exportKinds, exportIdx = append(exportNames, name), append(exportKinds, kind), append(exportIdx, idx)
				return err
			})
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
	}
	for i, name := range exportNames {
		switch exportKinds[i] {
		case KindFunc:
			if int(exportIdx[i]) >= len(funcTypes) {
				return nil, fmt.Errorf("export %q: function index %d out of range", name, exportIdx[i])
			}
			m.Funcs[name] = types[funcTypes[exportIdx[i]]]
		case KindMemory:
			if int(exportIdx[i]) >= len(memMins) {
				return nil, fmt.Errorf("export %q: memory index %d out of range", name, exportIdx[i])
			}
			m.Memories[name] = memMins[exportIdx[i]]
		}
	}
	return m, nil
}

func vec(r *reader, each func() error) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		if err := each(); err != nil {
			return err
		}
	}
	if len(r.b) != 0 {
		return errors.New("section longer than its contents")
	}
	return nil
}
