package abi

import (
	"errors"
	"strconv"
)

// The wire format is a subset of the protocol buffers encoding: every field
// is a tag varint (number<<3 | wire type) followed by a varint (wire type 0)
// or a length-delimited byte string (wire type 2). Zero values are omitted,
// repeated fields repeat the tag, and decoders skip fields they do not know.
// Nested message lengths are written as a five-byte padded varint so the
// encoder can fill the length in after writing the body, without a second
// pass or a temporary buffer; protobuf decoders accept padded varints.

const (
	wireVarint = 0
	wireBytes  = 2
)

// Message is implemented by every type that crosses the ABI.
type Message interface {
	// AppendABI appends the encoded message to b.
	AppendABI(b []byte) []byte
	// UnmarshalABI replaces the message's contents with the decoded b.
	UnmarshalABI(b []byte) error
}

// Marshal encodes m.
func Marshal(m Message) []byte { return m.AppendABI(nil) }

// Unmarshal decodes b into m.
func Unmarshal(b []byte, m Message) error { return m.UnmarshalABI(b) }

// errTruncated is returned when a message ends inside a field.
var errTruncated = errors.New("truncated message")

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, field, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

func appendString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, field int, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendUint(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(appendTag(b, field, wireVarint), v)
}

func appendInt(b []byte, field int, v int64) []byte {
	return appendUint(b, field, uint64(v<<1)^uint64(v>>63)) // zigzag
}

func appendBool(b []byte, field int, v bool) []byte {
	if !v {
		return b
	}
	return appendUint(b, field, 1)
}

func appendStrings(b []byte, field int, ss []string) []byte {
	for _, s := range ss {
		// Repeated strings keep empty elements so lengths round-trip.
		b = appendTag(b, field, wireBytes)
		b = appendVarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// appendMessage writes m as a nested message, always (an empty nested
// message still marks presence in a repeated field).
func appendMessage(b []byte, field int, m Message) []byte {
	b = appendTag(b, field, wireBytes)
	start := len(b)
	b = append(b, 0x80, 0x80, 0x80, 0x80, 0x00)
	b = m.AppendABI(b)
	n := uint64(len(b) - start - 5)
	for i := range 4 {
		b[start+i] = byte(n>>(7*i)) | 0x80
	}
	b[start+4] = byte(n >> 28)
	return b
}

// decoder reads fields one at a time. The first error sticks and is
// returned by err; reads after an error return zero values.
type decoder struct {
	b     []byte
	wire  int
	field int
	e     error
	more  bool // advance read a tag: field and wire are the next field's
}

func (d *decoder) fail(err error) {
	if d.e == nil {
		d.e = err
	}
	d.b = nil
}

func (d *decoder) varint() uint64 {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(d.b) {
			d.fail(errTruncated)
			return 0
		}
		c := d.b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.b = d.b[i+1:]
			return v
		}
	}
	d.fail(errors.New("varint overflows 64 bits"))
	return 0
}

// next advances to the next field and reports its number, or false at the
// end of the message or after an error.
func (d *decoder) next() bool {
	if len(d.b) == 0 || d.e != nil {
		return false
	}
	t := d.varint()
	d.field, d.wire = int(t>>3), int(t&7)
	if d.e == nil && d.field == 0 {
		d.fail(errors.New("field number 0"))
	}
	return d.e == nil
}

func (d *decoder) want(wire int) bool {
	if d.wire != wire {
		d.fail(errors.New("field " + strconv.Itoa(d.field) + " has wire type " +
			strconv.Itoa(d.wire) + ", want " + strconv.Itoa(wire)))
		return false
	}
	return true
}

func (d *decoder) raw() []byte {
	if !d.want(wireBytes) {
		return nil
	}
	n := d.varint()
	if d.e != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(errTruncated)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw()) }

// bytes returns a copy: callers reuse the buffers they decode from.
func (d *decoder) bytes() []byte {
	p := d.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) uint() uint64 {
	if !d.want(wireVarint) {
		return 0
	}
	return d.varint()
}

func (d *decoder) int() int64 {
	u := d.uint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) boolean() bool { return d.uint() != 0 }

func (d *decoder) msg(m Message) {
	p := d.raw()
	if d.e != nil {
		return
	}
	if err := m.UnmarshalABI(p); err != nil {
		d.fail(err)
	}
}

// skip discards a field this version does not know.
func (d *decoder) skip() {
	switch d.wire {
	case wireVarint:
		d.varint()
	case wireBytes:
		d.raw()
	case 1: // fixed64
		if len(d.b) < 8 {
			d.fail(errTruncated)
			return
		}
		d.b = d.b[8:]
	case 5: // fixed32
		if len(d.b) < 4 {
			d.fail(errTruncated)
			return
		}
		d.b = d.b[4:]
	default:
		d.fail(errors.New("unknown wire type " + strconv.Itoa(d.wire)))
	}
}

func (d *decoder) err(what string) error {
	if d.e == nil {
		return nil
	}
	return errors.New("abi: decoding " + what + ": " + d.e.Error())
}

// fields runs a message's field list in one direction. Each message lists
// its fields once, in field-number order, in a method
//
//	func (m *T) fields(f fields) fields
//
// that makes one call on f per field (f.str(1, &m.ID)) and returns f.
// Encoding (AppendABI) runs the list once and appends every field.
// Decoding (decode) runs it as a pass over the input: an entry whose number
// is the field at hand stores it and reads on. Encoders write fields in
// list order, so one pass decodes a message; fields in another order or
// repeated apart take a pass each, and a field no entry has is skipped.
// Either way fields are stored in the order they were read, as a switch
// over the field numbers would (TestFieldsInAnyOrder). The encoder and the
// decoder of a message cannot disagree, and a field is added in one line.
//
// # Notes
//
// f travels by value, in and out: a pointer to it handed through the func
// value m.fields would move it to the heap, an allocation per message.
// The entry methods (str, bool, ...) are small enough to be inlined into
// each list, so an entry that does not match costs a comparison. Against
// the hand-written encoder and decoder per message this replaced, a message
// allocates the same, decodes in about the same time and encodes in some
// tens of nanoseconds more on the host (BenchmarkUser, BenchmarkEncodeUser),
// and a refresh request's round trip inside the sandbox takes about a tenth
// more (BenchmarkGuestCodec in package plugins), far below what JSON took.
type fields struct {
	decoding bool
	b        []byte  // encoding: the output so far
	d        decoder // decoding: the input, at the field at hand (d.more)
}

// decode decodes b into the message whose list is m.fields; what names
// the message in errors.
func decode(b []byte, what string, list func(fields) fields) error {
	f := fields{decoding: true, d: decoder{b: b}}
	f.d.advance()
	for f.d.more {
		// Every value takes at least a byte, so a pass that stored a field
		// has consumed some of the input.
		left := len(f.d.b)
		if f = list(f); len(f.d.b) == left {
			f.d.skip() // no entry has this number
			f.d.advance()
		}
	}
	return f.d.err(what)
}

// advance reads the next field's tag.
func (d *decoder) advance() { d.more = d.next() }

// The take methods read the value of the field at hand, then the next
// field's tag, so that the next entry of a list sees it.
func (d *decoder) takeStr() string   { v := d.str(); d.advance(); return v }
func (d *decoder) takeBytes() []byte { v := d.bytes(); d.advance(); return v }
func (d *decoder) takeBool() bool    { v := d.boolean(); d.advance(); return v }
func (d *decoder) takeInt() int64    { v := d.int(); d.advance(); return v }

// at reports whether the field at hand is number n.
func (f *fields) at(n int) bool { return f.d.more && f.d.field == n }

// field encodes or decodes the singular field n held in *p, with put and
// get of its type.
func field[V any](f *fields, n int, p *V, put func([]byte, int, V) []byte, get func(*decoder) V) {
	if !f.decoding {
		f.b = put(f.b, n, *p)
	} else if f.at(n) {
		*p = get(&f.d)
	}
}

func (f *fields) str(n int, p *string)   { field(f, n, p, appendString, (*decoder).takeStr) }
func (f *fields) bytes(n int, p *[]byte) { field(f, n, p, appendBytes, (*decoder).takeBytes) }
func (f *fields) bool(n int, p *bool)    { field(f, n, p, appendBool, (*decoder).takeBool) }
func (f *fields) int64(n int, p *int64)  { field(f, n, p, appendInt, (*decoder).takeInt) }

// int is a zigzag varint field held in a Go int.
func (f *fields) int(n int, p *int) {
	v := int64(*p)
	f.int64(n, &v)
	*p = int(v)
}

// strs is a repeated string field.
func (f *fields) strs(n int, p *[]string) {
	if !f.decoding {
		f.b = appendStrings(f.b, n, *p)
		return
	}
	for f.at(n) {
		*p = append(*p, f.d.takeStr())
	}
}

// msg is a nested message field.
func (f *fields) msg(n int, m Message) {
	if !f.decoding {
		f.b = appendMessage(f.b, n, m)
	} else if f.at(n) {
		f.d.msg(m)
		f.d.advance()
	}
}

// msgs is a repeated message field; each element is decoded in place.
func msgs[T any, P interface {
	*T
	Message
}](f *fields, n int, p *[]T) {
	if !f.decoding {
		for i := range *p {
			f.b = appendMessage(f.b, n, P(&(*p)[i]))
		}
		return
	}
	for f.at(n) {
		*p = append(*p, *new(T))
		f.d.msg(P(&(*p)[len(*p)-1]))
		f.d.advance()
	}
}
