package wasmbin

import "testing"

// TestFuncTypeString: signatures read as in the WebAssembly text format's
// comments, with no result, one, or several in parentheses.
func TestFuncTypeString(t *testing.T) {
	for _, c := range []struct {
		t    FuncType
		want string
	}{
		{FuncType{}, "func()"},
		{FuncType{Params: []ValType{I32, I32}, Results: []ValType{I64}}, "func(i32, i32) i64"},
		{FuncType{Params: []ValType{I32}}, "func(i32)"},
		{FuncType{Results: []ValType{I32, F64, I64}}, "func() (i32, f64, i64)"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}
