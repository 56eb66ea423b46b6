package abi_test

import (
	"reflect"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// TestFieldsInAnyOrder: a protobuf decoder takes fields in any order,
// repeated fields apart from each other and a singular field twice (the
// last one wins). Arbor's encoders write fields in number order, but a
// plugin built with another encoder may not.
func TestFieldsInAnyOrder(t *testing.T) {
	str := func(field byte, s string) []byte { return append([]byte{field<<3 | 2, byte(len(s))}, s...) }
	var b []byte
	b = append(b, str(6, "a")...)         // scopes
	b = append(b, str(1, "first")...)     // access token
	b = append(b, str(6, "b")...)         // scopes again, apart
	b = append(b, 4<<3|0, 0x0e)           // expires in: zig-zag 7
	b = append(b, str(3, "bearer")...)    // token type
	b = append(b, 15<<3|0, 0x01)          // a field this version does not know
	b = append(b, str(1, "last")...)      // access token again: the last wins
	b = append(b, str(6, "c")...)         // scopes, after all of that
	b = append(b, 2<<3|2, 0)              // an empty refresh token
	b = append(b, str(7, "id")...)        // id token
	b = append(b, 14<<3|2, 2, 0xff, 0xff) // another unknown field, last
	want := abi.Token{AccessToken: "last", TokenType: "bearer", ExpiresIn: 7, Scopes: []string{"a", "b", "c"}, IDToken: "id"}
	var got abi.Token
	if err := abi.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, %v\nwant %+v", got, err, want)
	}

	// Repeated messages apart from each other keep their order too.
	hdr := func(name string) []byte {
		return append([]byte{2<<3 | 2, byte(2 + len(name))}, str(1, name)...)
	}
	b = nil
	b = append(b, hdr("A")...)
	b = append(b, 1<<3|0, 0x90, 0x03) // status 200
	b = append(b, hdr("B")...)
	b = append(b, str(5, "m")...)
	b = append(b, hdr("C")...)
	var resp abi.HTTPResponse
	wantResp := abi.HTTPResponse{Status: 200, Headers: []abi.Header{{Name: "A"}, {Name: "B"}, {Name: "C"}}, Message: "m"}
	if err := abi.Unmarshal(b, &resp); err != nil || !reflect.DeepEqual(resp, wantResp) {
		t.Fatalf("decoded %+v, %v\nwant %+v", resp, err, wantResp)
	}
}
