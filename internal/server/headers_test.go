package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keyservice/keyservice/internal/config"
)

// h2conn is a raw HTTP/2 client connection: header blocks go out exactly
// as the test writes them (no client adds or checks anything).
type h2conn struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
	next uint32
}

func newH2(t *testing.T, c net.Conn) *h2conn {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	h := &h2conn{t: t, c: c, fr: http2.NewFramer(c, c), next: 1}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// field is one header field; size is what HTTP/2 counts for it.
type field struct{ name, value string }

func (f field) size() int { return len(f.name) + len(f.value) + 32 }

func listSize(fs []field) int {
	n := 0
	for _, f := range fs {
		n += f.size()
	}
	return n
}

// padded appends x-filler to fs so that the fields counted (those for
// which counted is true) add up to exactly size.
func padded(t *testing.T, fs []field, counted func(field) bool, size int) []field {
	t.Helper()
	n := 0
	for _, f := range fs {
		if counted(f) {
			n += f.size()
		}
	}
	pad := size - n - len("x-filler") - 32
	if pad < 0 {
		t.Fatalf("cannot pad %d bytes of fields to %d", n, size)
	}
	return append(fs, field{"x-filler", strings.Repeat("x", pad)})
}

// send opens a stream with fields, then sends body (a whole gRPC frame)
// and ends it; a nil body ends the stream with the headers.
func (h *h2conn) send(fs []field, body []byte) uint32 {
	h.t.Helper()
	h.buf.Reset()
	for _, f := range fs {
		if err := h.enc.WriteField(hpack.HeaderField{Name: f.name, Value: f.value}); err != nil {
			h.t.Fatal(err)
		}
	}
	block := h.buf.Bytes()
	id := h.next
	h.next += 2
	const frame = 16384 // the default SETTINGS_MAX_FRAME_SIZE
	n := min(len(block), frame)
	err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n], EndHeaders: n == len(block), EndStream: body == nil})
	for rest := block[n:]; err == nil && len(rest) > 0; rest = rest[n:] {
		n = min(len(rest), frame)
		err = h.fr.WriteContinuation(id, n == len(rest), rest[:n])
	}
	if err == nil && body != nil {
		err = h.fr.WriteData(id, true, body)
	}
	if err != nil {
		h.t.Fatalf("writing stream %d: %v", id, err)
	}
	return id
}

// h2result is how a stream ended: its response header fields (trailers
// included), or a reset, or the end of the connection.
type h2result struct {
	fields map[string]string
	reset  http2.ErrCode
	wasRST bool
	closed error // GOAWAY or a read error: the whole connection ended
}

func (r h2result) String() string {
	switch {
	case r.closed != nil:
		return "connection closed: " + r.closed.Error()
	case r.wasRST:
		return "stream reset: " + r.reset.String()
	}
	return fmt.Sprint(r.fields)
}

func (h *h2conn) result(id uint32) h2result {
	h.t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res := h2result{fields: map[string]string{}}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			res.closed = err
			return res
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = h.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			res.closed = fmt.Errorf("GOAWAY %v", f.ErrCode)
			return res
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				res.wasRST, res.reset = true, f.ErrCode
				return res
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				for _, hf := range f.Fields {
					res.fields[hf.Name] = hf.Value
				}
				if f.StreamEnded() {
					return res
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id && f.StreamEnded() {
				return res
			}
		}
	}
}

// TestGRPCMetadataLimitIsExactAndRefusesOnlyThatCall: a call's metadata
// (every entry the service receives, :authority and content-type included,
// and the method's :path; name + value + 32 bytes each) of exactly
// KEYSERVICE_MAX_HEADER_BYTES is served; one byte more refuses that call
// alone with RESOURCE_EXHAUSTED, and the same connection serves the next
// call (an oversized block used to close the connection: "Socket closed").
// Past 4 x the limit, as HTTP/2 counts the whole block, golang.org/x/net's
// HTTP/2 layer stops reading it: the stream is reset (the connection
// stays), and a single name or value longer than that closes the
// connection.
func TestGRPCMetadataLimitIsExactAndRefusesOnlyThatCall(t *testing.T) {
	t.Parallel()
	e := start(t)
	limit := config.Defaults().MaxHeaderBytes
	c, err := net.Dial("tcp", e.srv.GRPCAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := newH2(t, c)
	base := []field{
		{":method", "POST"}, {":scheme", "http"}, {":path", healthpb.Health_Check_FullMethodName},
		{":authority", "keyservice"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	}
	// Not counted: what grpc-go keeps to itself (not metadata).
	counted := func(f field) bool { return f.name != ":method" && f.name != ":scheme" && f.name != "te" }
	empty := []byte{0, 0, 0, 0, 0} // an empty HealthCheckRequest, framed
	call := func(fs []field) h2result { return h.result(h.send(fs, empty)) }
	ok := func(r h2result) bool { return r.closed == nil && !r.wasRST && r.fields["grpc-status"] == "0" }

	if r := call(padded(t, base, counted, limit)); !ok(r) {
		t.Fatalf("metadata of exactly %d bytes: %v, want served", limit, r)
	}
	over := call(padded(t, base, counted, limit+1))
	if over.closed != nil || over.wasRST || over.fields["grpc-status"] != fmt.Sprint(int(codes.ResourceExhausted)) {
		t.Fatalf("metadata of %d bytes: %v, want that call refused with RESOURCE_EXHAUSTED", limit+1, over)
	}
	t.Logf("%d bytes: grpc-status %s %q", limit+1, over.fields["grpc-status"], over.fields["grpc-message"])
	if r := call(padded(t, base, counted, limit)); !ok(r) {
		t.Fatalf("the next call on the same connection: %v, want served", r)
	}
	// 2,000 copies of one small field: a 2 KB block (HPACK indexes the
	// repeats) that HTTP/2 counts as 72,000 bytes, past 4 x the limit.
	var many []field
	for range 2000 {
		many = append(many, field{"x-a", "b"})
	}
	if n := listSize(append(base, many...)); n <= 4*limit {
		t.Fatalf("test bug: %d bytes is not past 4 x %d", n, limit)
	}
	if r := call(append(base, many...)); r.closed != nil || !r.wasRST {
		t.Fatalf("a block past 4 x the limit: %v, want the stream reset", r)
	}
	if r := call(padded(t, base, counted, limit)); !ok(r) {
		t.Fatalf("a call after the reset stream: %v, want served", r)
	}
	if r := call(append(base, field{"x-huge", strings.Repeat("x", 4*limit+1)})); r.closed == nil {
		t.Fatalf("a value longer than 4 x the limit: %v, want the connection closed", r)
	} else {
		t.Logf("a value longer than 4 x the limit: %v", r)
	}
}

// TestHTTPHeaderLimitIsExact: an HTTP request whose header list (counted
// as HTTP/2 counts it: name + value + 32 bytes per field, with the method,
// scheme, authority and path) is exactly KEYSERVICE_MAX_HEADER_BYTES is
// served, one byte more is 431, over HTTP/1.1 and over HTTP/2 (TLS). Go's
// own limit used to let about 20,400 bytes through.
func TestHTTPHeaderLimitIsExact(t *testing.T) {
	t.Parallel()
	limit := config.Defaults().MaxHeaderBytes
	all := func(field) bool { return true }
	base := func(scheme string) []field {
		return []field{{":method", "GET"}, {":scheme", scheme}, {":authority", "keyservice"}, {":path", "/healthz"}}
	}
	t.Run("HTTP/1.1", func(t *testing.T) {
		t.Parallel()
		e := start(t)
		status := func(size int) int {
			fs := padded(t, base("http"), all, size)
			c, err := net.Dial("tcp", e.srv.HTTPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var req strings.Builder
			fmt.Fprintf(&req, "GET /healthz HTTP/1.1\r\nHost: keyservice\r\n")
			for _, f := range fs[4:] {
				fmt.Fprintf(&req, "%s: %s\r\n", f.name, f.value)
			}
			req.WriteString("\r\n")
			if _, err := c.Write([]byte(req.String())); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%d bytes of headers: %v", size, err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := status(limit); code != http.StatusOK {
			t.Fatalf("headers of exactly %d bytes: %d, want 200", limit, code)
		}
		if code := status(limit + 1); code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("headers of %d bytes: %d, want 431", limit+1, code)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		t.Parallel()
		p := newPKI(t)
		_, certFile, keyFile := p.issue(t, "keyservice", true)
		e := start(t, withConfig(func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, filepath.Join(p.dir, "ca.pem")
		}))
		c, err := tls.Dial("tcp", e.srv.HTTPAddr().String(), &tls.Config{RootCAs: p.caPool, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		if proto := c.ConnectionState().NegotiatedProtocol; proto != "h2" {
			t.Fatalf("negotiated %q, want h2", proto)
		}
		h := newH2(t, c)
		if r := h.result(h.send(padded(t, base("https"), all, limit), nil)); r.fields[":status"] != "200" {
			t.Fatalf("headers of exactly %d bytes: %v, want 200", limit, r)
		}
		if r := h.result(h.send(padded(t, base("https"), all, limit+1), nil)); r.fields[":status"] != "431" {
			t.Fatalf("headers of %d bytes: %v, want 431", limit+1, r)
		}
	})
}
