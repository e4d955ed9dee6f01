package gateway

import (
	"bytes"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The reader half of fastJSON (fastjson.go): a request body that is one
// flat object of plain values is read here; anything else goes to
// strictJSON.

// readFlat sets m from body when body is one JSON object whose members
// are all plain: names of m's fields (proto or JSON name), each once, with
// string values without escapes, integers without sign tricks, true/false,
// or lists of those. It reports false, leaving m untouched, for anything
// else; strictJSON then reads (or refuses) the body as protojson does.
func readFlat(body []byte, m protoreflect.Message) bool {
	type member struct {
		fd   protoreflect.FieldDescriptor
		vals [4]protoreflect.Value
		list []protoreflect.Value
		n    int
	}
	var members [8]member
	got := members[:0]
	fds := m.Descriptor().Fields()
	s := scanner{b: body}
	if !s.take('{') {
		return false
	}
	if !s.take('}') {
		for {
			name, ok := s.plainString()
			if !ok || !s.take(':') {
				return false
			}
			fd := fds.ByName(protoreflect.Name(name))
			if fd == nil {
				fd = fds.ByJSONName(string(name))
			}
			if fd == nil || fd.IsMap() || len(got) == cap(members) {
				return false
			}
			for i := range got {
				if got[i].fd == fd {
					return false // a duplicate: protojson's error
				}
			}
			mb := member{fd: fd}
			if fd.IsList() {
				if !s.take('[') {
					return false
				}
				if !s.take(']') {
					for {
						v, ok := s.scalar(fd)
						if !ok {
							return false
						}
						if mb.n < len(mb.vals) {
							mb.vals[mb.n] = v
						} else {
							mb.list = append(mb.list, v)
						}
						mb.n++
						if s.take(']') {
							break
						}
						if !s.take(',') {
							return false
						}
					}
				}
			} else {
				v, ok := s.scalar(fd)
				if !ok {
					return false
				}
				mb.vals[0], mb.n = v, 1
			}
			got = append(got, mb)
			if s.take('}') {
				break
			}
			if !s.take(',') {
				return false
			}
		}
	}
	s.space()
	if s.i != len(s.b) {
		return false
	}
	proto.Reset(m.Interface()) // as protojson does before it reads
	for i := range got {
		mb := &got[i]
		if !mb.fd.IsList() {
			m.Set(mb.fd, mb.vals[0])
			continue
		}
		if mb.n == 0 {
			continue
		}
		l := m.Mutable(mb.fd).List()
		for j := 0; j < mb.n; j++ {
			if j < len(mb.vals) {
				l.Append(mb.vals[j])
			} else {
				l.Append(mb.list[j-len(mb.vals)])
			}
		}
	}
	return true
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// take skips white space and then c, if c is next.
func (s *scanner) take(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string without escapes or control characters, in
// valid UTF-8; it returns the bytes between the quotes.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.take('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, utf8.Valid(v)
		case c == '\\' || c < ' ':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// scalar reads one plain value of fd's kind.
func (s *scanner) scalar(fd protoreflect.FieldDescriptor) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		v, ok := s.plainString()
		return protoreflect.ValueOfString(string(v)), ok
	case protoreflect.BoolKind:
		s.space()
		switch {
		case bytes.HasPrefix(s.b[s.i:], []byte("true")):
			s.i += 4
			return protoreflect.ValueOfBool(true), s.delimited()
		case bytes.HasPrefix(s.b[s.i:], []byte("false")):
			s.i += 5
			return protoreflect.ValueOfBool(false), s.delimited()
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n, ok := s.integer(32); ok {
			return protoreflect.ValueOfInt32(int32(n)), true
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, ok := s.integer(64); ok {
			return protoreflect.ValueOfInt64(n), true
		}
	}
	return protoreflect.Value{}, false
}

// integer reads -?[0-9]+ within bits (no leading zeroes, fraction or
// exponent: those are protojson's to judge).
func (s *scanner) integer(bits int) (int64, bool) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || s.i-digits > 18 || (s.b[digits] == '0' && s.i-digits > 1) || !s.delimited() {
		return 0, false // 19 digits and more are protojson's to judge
	}
	var n int64
	for _, c := range s.b[digits:s.i] {
		n = n*10 + int64(c-'0')
	}
	if digits > start {
		n = -n
	}
	if bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, false
	}
	return n, true
}

// delimited reports whether the value just read ends where a value may.
func (s *scanner) delimited() bool {
	if s.i == len(s.b) {
		return true
	}
	switch s.b[s.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}
