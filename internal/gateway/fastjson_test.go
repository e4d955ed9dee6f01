package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func testMarshaler() fastJSON {
	return fastJSON{strictJSON{&runtime.JSONPb{
		MarshalOptions:   jsonOptions,
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}}
}

// tokens is the JSON token stream of b: the same JSON, white space aside,
// with members in the same order.
func tokens(t *testing.T, b []byte) []any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []any
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, b)
		}
		out = append(out, tok)
	}
}

// Strings the writer must escape as protojson does: quotes, backslashes,
// every control character, HTML characters (not escaped), line and
// paragraph separators, multi-byte runes, and invalid UTF-8 (protojson's
// error).
var corpusStrings = []string{
	"", "a", "key_1", `"quoted"`, `back\slash`, "line\nfeed\r\ttab\b\f", "\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "\u2028\u2029", "ünïcødé ✓ 🔑", "\xff", "ok\xc3", strings.Repeat("x", 300),
}

// fill sets every field of m to a random value, messages to depth 3.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if r.IntN(4) == 0 {
			continue // some fields unset
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for n := r.IntN(4); n > 0; n-- {
				if v, ok := randomValue(r, fd, l.NewElement, depth); ok {
					l.Append(v)
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for n := r.IntN(4); n > 0; n-- {
				k := protoreflect.ValueOfString(corpusStrings[r.IntN(len(corpusStrings))]).MapKey()
				if v, ok := randomValue(r, fd.MapValue(), mp.NewValue, depth); ok {
					mp.Set(k, v)
				}
			}
		default:
			if v, ok := randomValue(r, fd, func() protoreflect.Value { return m.NewField(fd) }, depth); ok {
				m.Set(fd, v)
			}
		}
	}
}

func randomValue(r *rand.Rand, fd protoreflect.FieldDescriptor, newMessage func() protoreflect.Value, depth int) (protoreflect.Value, bool) {
	ints := []int64{0, 1, -1, 42, 1 << 31, -(1 << 31) + 1, 1<<53 + 1, -(1 << 62), 1<<63 - 1}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(corpusStrings[r.IntN(len(corpusStrings))]), true
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(corpusStrings[r.IntN(len(corpusStrings))])), true
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0), true
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if r.IntN(8) == 0 {
			return protoreflect.ValueOfEnum(99), true // a number the enum does not name
		}
		return protoreflect.ValueOfEnum(vals.Get(r.IntN(vals.Len())).Number()), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(ints[r.IntN(len(ints))])), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(ints[r.IntN(len(ints))])), true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(ints[r.IntN(len(ints))]), true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(ints[r.IntN(len(ints))])), true
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(r.NormFloat64())), true
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(r.NormFloat64() * 1e9), true
	case protoreflect.MessageKind:
		if depth == 0 {
			return protoreflect.Value{}, false
		}
		v := newMessage()
		switch fd.Message().FullName() {
		case timestampName:
			ts := []*timestamppb.Timestamp{{Seconds: 1764752000}, {Seconds: 1764752000, Nanos: 5e8},
				{Seconds: 1764752000, Nanos: 123456000}, {Seconds: 1, Nanos: 7}, {Seconds: -62135596800},
				{Seconds: 253402300799, Nanos: 999999999}, {Seconds: 253402300800}, {Nanos: -1}}
			proto.Merge(v.Message().Interface(), ts[r.IntN(len(ts))])
		case durationName:
			ds := []*durationpb.Duration{{Seconds: 60}, {Seconds: 1, Nanos: 500000000}, {Nanos: 1000},
				{Seconds: -3, Nanos: -5}, {}, {Seconds: 315576000001}, {Seconds: 1, Nanos: -1}}
			proto.Merge(v.Message().Interface(), ds[r.IntN(len(ds))])
		default:
			fill(r, v.Message(), depth-1)
		}
		return v, true
	}
	return protoreflect.Value{}, false
}

// TestFastJSONMatchesProtojson: for every message of the API, over a
// corpus of random values with hostile strings, times at and past their
// limits and enum numbers without names, the REST marshaler writes the
// same JSON as protojson with jsonOptions (token for token, white space
// aside) or refuses exactly when protojson refuses.
func TestFastJSONMatchesProtojson(t *testing.T) {
	m := testMarshaler()
	msgs := keyservicev1.File_keyservice_v1_keyservice_proto.Messages()
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			t.Fatal(err)
		}
		if planOf(md) != nil {
			fast++
		}
		for n := 0; n < 300; n++ {
			msg := mt.New()
			if n > 0 {
				fill(r, msg, 3)
			}
			want, wantErr := jsonOptions.Marshal(msg.Interface())
			got, gotErr := m.Marshal(msg.Interface())
			if (wantErr != nil) != (gotErr != nil) {
				t.Fatalf("%s: protojson error %v, ours %v", md.FullName(), wantErr, gotErr)
			}
			if wantErr != nil {
				continue
			}
			if !reflect.DeepEqual(tokens(t, got), tokens(t, want)) {
				t.Fatalf("%s:\nours      %s\nprotojson %s", md.FullName(), got, want)
			}
		}
	}
	// The hot messages must take the fast way, or this test proves nothing.
	for _, msg := range []proto.Message{&keyservicev1.ValidateResponse{}, &keyservicev1.Key{}, &keyservicev1.ValidateRequest{}} {
		if planOf(msg.ProtoReflect().Descriptor()) == nil {
			t.Errorf("%T is left to protojson", msg)
		}
	}
	t.Logf("%d of %d messages written by the fast writer", fast, msgs.Len())
}

// Request bodies: plain ones the fast reader takes, and every shape it
// must hand to protojson (escapes, nulls, quoted and out-of-range numbers,
// duplicates under either name, unknown fields, trailing data, bad UTF-8).
var corpusBodies = []string{
	`{"key":"ks_abc"}`, ` { "key" : "ks_abc" , "cost" : 3 } `, `{"key":"k","cost":0}`, `{"key":"k","cost":-0}`,
	`{"key":"k","cost":-7}`, `{"key":"k","cost":2147483647}`, `{"key":"k","cost":2147483648}`,
	`{"key":"k","cost":-2147483649}`, `{"key":"k","cost":"5"}`, `{"key":"k","cost":5.0}`, `{"key":"k","cost":1e2}`,
	`{"key":"k","cost":05}`, `{"key":"k","cost":99999999999999999999}`, `{"key":"k","cost":null}`,
	`{"key":null}`, `{"key":"a\"b"}`, `{"key":"a\u0041"}`, "{\"key\":\"a\x01\"}", "{\"key\":\"\xff\"}",
	`{"key":"k","client_ip":"203.0.113.9","required_scopes":["read","write"],"keyspace":"prod"}`,
	`{"key":"k","clientIp":"203.0.113.9","requiredScopes":[]}`, `{"key":"k","requiredScopes":["a","b","c","d","e","f"]}`,
	`{"key":"k","required_scopes":["a",]}`, `{"key":"k","required_scopes":[1]}`, `{"key":"k","required_scopes":null}`,
	`{"key":"a","key":"b"}`, `{"client_ip":"a","clientIp":"b"}`, `{"kee":"k"}`, `{"key":"k"}x`, `{"key":"k"}{}`,
	`{"key":"k",}`, `{"key" "k"}`, `{}`, ``, `   `, `[]`, `"key"`, `{"key":"k"`, `{"key":"k","cost":true}`,
	`{"key":true}`, `{"key":"k","cost":3 }`, `{"key":"k","cost":3,}`, `{"cost":-}`, `{"cost":-01}`,
	`{"key":"k"}` + "\n", `{"key":"k","extra":{"a":1}}`,
}

// decodeBoth reads body with the REST marshaler and with protojson's
// strict reader into fresh messages of md's type.
func decodeBoth(t *testing.T, md proto.Message, body string) (got, want proto.Message, gotErr, wantErr error) {
	m := testMarshaler()
	got, want = md.ProtoReflect().New().Interface(), md.ProtoReflect().New().Interface()
	gotErr = m.NewDecoder(strings.NewReader(body)).Decode(got)
	wantErr = m.strictJSON.NewDecoder(strings.NewReader(body)).Decode(want)
	return
}

// TestFastJSONReadsAsProtojson: every body of the corpus is read into the
// same message, or refused with the same error, as by protojson.
func TestFastJSONReadsAsProtojson(t *testing.T) {
	for _, body := range corpusBodies {
		for _, md := range []proto.Message{&keyservicev1.ValidateRequest{}, &keyservicev1.GetKeyRequest{}} {
			got, want, gotErr, wantErr := decodeBoth(t, md, body)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Errorf("%T %q: error %v, protojson %v", md, body, gotErr, wantErr)
				continue
			}
			if !proto.Equal(got, want) {
				t.Errorf("%T %q: read %v, protojson %v", md, body, got, want)
			}
		}
	}
	// The usual request must take the fast way.
	var req keyservicev1.ValidateRequest
	if !readFlat([]byte(`{"key":"k","cost":2,"required_scopes":["a"]}`), req.ProtoReflect()) || req.GetCost() != 2 {
		t.Fatalf("the plain Validate request was not read by the fast reader: %v", &req)
	}
}

func FuzzFastJSONRead(f *testing.F) {
	for _, body := range corpusBodies {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, want, gotErr, wantErr := decodeBoth(t, &keyservicev1.ValidateRequest{}, body)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, protojson %v", body, gotErr, wantErr)
		}
		if gotErr == nil && !proto.Equal(got, want) {
			t.Fatalf("%q: read %v, protojson %v", body, got, want)
		}
	})
}

func hotResponse() *keyservicev1.ValidateResponse {
	return &keyservicev1.ValidateResponse{
		Valid: true, Code: keyservicev1.Code_CODE_VALID,
		Key: &keyservicev1.Key{
			Id: "0193a4c2-7d1e-7b3a-9f00-5e1d2c3b4a59", Hint: "ks_live_…4a59", Name: "checkout service",
			Owner: "acme", Scopes: []string{"read", "write"}, Metadata: map[string]string{"plan": "pro", "region": "eu"},
			CreatedAt: timestamppb.New(timestamppb.Now().AsTime()), Enabled: true,
			RateLimit:  &keyservicev1.RateLimit{Limit: 100, Period: durationpb.New(60e9), Burst: 10},
			KeyspaceId: "0193a4c2-0000-7000-8000-000000000001",
		},
		RateLimit: &keyservicev1.RateLimitStatus{Limit: 100, Remaining: 99, Reset_: durationpb.New(6e8)},
	}
}

func BenchmarkRESTMarshal(b *testing.B) {
	resp := hotResponse()
	m := testMarshaler()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Marshal(resp)
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.strictJSON.Marshal(resp)
		}
	})
}

func BenchmarkRESTDecode(b *testing.B) {
	body := []byte(`{"key":"ks_live_0193a4c27d1e7b3a9f005e1d2c3b4a59_x7Kq","client_ip":"203.0.113.9"}`)
	m := testMarshaler()
	for _, c := range []struct {
		name string
		dec  func(io.Reader) runtime.Decoder
	}{{"fast", m.NewDecoder}, {"protojson", m.strictJSON.NewDecoder}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req keyservicev1.ValidateRequest
				if err := c.dec(bytes.NewReader(body)).Decode(&req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
