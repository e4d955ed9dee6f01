package gateway

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fastJSON is the REST marshaler: strictJSON (protojson with jsonOptions)
// with a faster writer and reader in front. A profile of REST Validate
// spent ~38% of the handler in protojson.Marshal (most of it sorting each
// message's fields and boxing values) and ~15% in decoding the request
// through encoding/json and protojson.
//
// The writer walks a message by a plan made once per message type: its
// fields in declaration order, as protojson writes them, with their JSON
// names. It writes exactly what protojson writes with jsonOptions (proto
// names; every scalar, list and map field even when empty; message fields
// and fields with presence only when set; int64s quoted; enums by name;
// map keys sorted; Timestamp and Duration in their JSON forms), apart from
// protojson's deliberately unstable white space. A type it does not know
// how to write (floats, bytes, other well-known types, non-string map
// keys) and any value protojson would refuse (invalid UTF-8, a time out of
// range) go to protojson, which writes or refuses them as before. Any
// message works, so a field added to the API needs no change here;
// TestFastJSONMatchesProtojson checks every response type of the service
// over a corpus.
//
// The reader takes a request body that is one flat object of string, bool,
// integer and string-list fields with plain values (the Validate request
// as clients send it) and hands anything else — escapes, nulls, nested
// messages, quoted numbers, duplicates, unknown fields, trailing data — to
// strictJSON, so every request is read, or refused, as protojson reads it.
type fastJSON struct{ strictJSON }

func (m fastJSON) Marshal(v any) ([]byte, error) {
	if msg, ok := v.(proto.Message); ok {
		if b, ok := appendMessage(make([]byte, 0, 512), msg.ProtoReflect()); ok {
			return b, nil
		}
	}
	return m.strictJSON.Marshal(v)
}

func (m fastJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		msg, ok := v.(proto.Message)
		if !ok {
			return m.strictJSON.NewDecoder(r).Decode(v)
		}
		buf := bodyBuffers.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 64<<10 {
				buf.Reset()
				bodyBuffers.Put(buf)
			}
		}()
		if _, err := buf.ReadFrom(r); err != nil {
			// Let strictJSON read what came and meet the same error
			// (a body over the limit, a broken connection) in its words.
			return m.strictJSON.NewDecoder(io.MultiReader(bytes.NewReader(buf.Bytes()), r)).Decode(v)
		}
		if readFlat(buf.Bytes(), msg.ProtoReflect()) {
			return nil
		}
		return m.strictJSON.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(v)
	})
}

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// A plan is how to write one message type; nil when the writer leaves the
// type to protojson.
type plan struct {
	fields []planField
}

type planField struct {
	fd       protoreflect.FieldDescriptor
	name     string // `"name":`
	presence bool   // written only when set (messages, oneofs, proto3 optional)
}

var plans sync.Map // protoreflect.FullName → *plan (nil *plan: unsupported)

const (
	timestampName protoreflect.FullName = "google.protobuf.Timestamp"
	durationName  protoreflect.FullName = "google.protobuf.Duration"
)

func planOf(md protoreflect.MessageDescriptor) *plan {
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*plan)
	}
	p := makePlan(md, map[protoreflect.FullName]bool{})
	plans.Store(md.FullName(), p)
	return p
}

// makePlan plans md, or returns nil when md or a message it contains has
// a field the writer does not write.
func makePlan(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) *plan {
	if md.FullName().Parent() == "google.protobuf" || md.IsMapEntry() {
		return nil // well-known types are written by writeValue or not at all
	}
	seen[md.FullName()] = true
	fds := md.Fields()
	p := &plan{fields: make([]planField, 0, fds.Len())}
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.IsMap() {
			if fd.MapKey().Kind() != protoreflect.StringKind || !writable(fd.MapValue(), seen) {
				return nil
			}
		} else if !writable(fd, seen) {
			return nil
		}
		p.fields = append(p.fields, planField{
			fd:       fd,
			name:     strconv.Quote(string(fd.Name())) + ":",
			presence: fd.HasPresence(),
		})
	}
	return p
}

func writable(fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]bool) bool {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BoolKind, protoreflect.EnumKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return fd.Kind() != protoreflect.EnumKind || fd.Enum().FullName() != "google.protobuf.NullValue"
	case protoreflect.MessageKind:
		name := fd.Message().FullName()
		if name == timestampName || name == durationName || seen[name] {
			return true // a recursive type is planned when first met
		}
		if p, ok := plans.Load(name); ok {
			return p.(*plan) != nil
		}
		return makePlan(fd.Message(), seen) != nil
	}
	return false // floats, bytes, groups
}

// appendMessage writes m as protojson would; !ok hands it to protojson.
func appendMessage(b []byte, m protoreflect.Message) ([]byte, bool) {
	p := planOf(m.Descriptor())
	if p == nil {
		return b, false
	}
	b = append(b, '{')
	first := true
	for i := range p.fields {
		f := &p.fields[i]
		if f.presence && !m.Has(f.fd) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.name...)
		var ok bool
		switch {
		case f.fd.IsList():
			b, ok = appendList(b, f.fd, m.Get(f.fd).List())
		case f.fd.IsMap():
			b, ok = appendMap(b, f.fd.MapValue(), m.Get(f.fd).Map())
		default:
			b, ok = appendValue(b, f.fd, m.Get(f.fd))
		}
		if !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendList(b []byte, fd protoreflect.FieldDescriptor, l protoreflect.List) ([]byte, bool) {
	b = append(b, '[')
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendValue(b, fd, l.Get(i)); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

func appendMap(b []byte, vd protoreflect.FieldDescriptor, m protoreflect.Map) ([]byte, bool) {
	keys := make([]string, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k.String())
		return true
	})
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendString(b, k); !ok {
			return b, false
		}
		b = append(b, ':')
		if b, ok = appendValue(b, vd, m.Get(protoreflect.ValueOfString(k).MapKey())); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendValue(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) ([]byte, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return appendString(b, v.String())
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), true
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			b = append(b, '"')
			b = append(b, ev.Name()...)
			return append(b, '"'), true
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		b = strconv.AppendInt(b, v.Int(), 10)
		return append(b, '"'), true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		b = strconv.AppendUint(b, v.Uint(), 10)
		return append(b, '"'), true
	case protoreflect.MessageKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case timestampName:
			return appendTimestamp(b, m)
		case durationName:
			return appendDuration(b, m)
		}
		return appendMessage(b, m)
	}
	return b, false
}

// appendString writes s as protojson does: only ", \ and control
// characters escaped (not <, > or &); invalid UTF-8 is protojson's error.
func appendString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, false
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

const hexDigits = "0123456789abcdef"

// The ranges protojson accepts.
const (
	minTimestampSeconds  = -62135596800 // 0001-01-01T00:00:00Z
	maxTimestampSeconds  = 253402300799 // 9999-12-31T23:59:59Z
	maxDurationSeconds   = 315576000000
	maxNanos             = 999999999
	secondsFieldNumber   = 1
	nanosFieldNumber     = 2
	fractionWithZeroes   = ".000000000"
	timestampLayoutNanos = "2006-01-02T15:04:05.000000000"
)

func secondsAndNanos(m protoreflect.Message) (int64, int64) {
	fds := m.Descriptor().Fields()
	return m.Get(fds.ByNumber(secondsFieldNumber)).Int(), m.Get(fds.ByNumber(nanosFieldNumber)).Int()
}

// appendTimestamp writes RFC 3339 in UTC with 0, 3, 6 or 9 fractional
// digits, as protojson does.
func appendTimestamp(b []byte, m protoreflect.Message) ([]byte, bool) {
	secs, nanos := secondsAndNanos(m)
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos > maxNanos {
		return b, false
	}
	b = append(b, '"')
	b = time.Unix(secs, nanos).UTC().AppendFormat(b, timestampLayoutNanos)
	b = trimFraction(b)
	return append(b, 'Z', '"'), true
}

// appendDuration writes seconds with 0, 3, 6 or 9 fractional digits and
// "s", as protojson does.
func appendDuration(b []byte, m protoreflect.Message) ([]byte, bool) {
	secs, nanos := secondsAndNanos(m)
	if secs < -maxDurationSeconds || secs > maxDurationSeconds || nanos < -maxNanos || nanos > maxNanos ||
		(secs > 0 && nanos < 0) || (secs < 0 && nanos > 0) {
		return b, false
	}
	b = append(b, '"')
	if secs < 0 || nanos < 0 {
		b = append(b, '-')
		secs, nanos = -secs, -nanos
	}
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, fractionWithZeroes...)
	var digits [10]byte
	frac := strconv.AppendInt(digits[:0], nanos, 10)
	copy(b[len(b)-len(frac):], frac)
	b = trimFraction(b)
	return append(b, 's', '"'), true
}

// trimFraction drops trailing groups of three zeroes from a 9-digit
// fraction at the end of b, and the point when none is left.
func trimFraction(b []byte) []byte {
	for range 2 {
		if bytes.HasSuffix(b, []byte("000")) {
			b = b[:len(b)-3]
		}
	}
	if bytes.HasSuffix(b, []byte(".000")) {
		b = b[:len(b)-4]
	}
	return b
}
