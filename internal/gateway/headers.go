package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/keyservice/keyservice/internal/middleware"
)

// LimitHeaders answers 431 to a request whose header list is over limit
// bytes, counted as HTTP/2 counts it whatever the protocol (HeaderListSize),
// the same measure as the gRPC port's. Go's http.Server has a limit of its
// own, set to the same number, but it lets MaxHeaderBytes + 4096 bytes of
// an HTTP/1.1 request line and headers through (slack for its read
// buffer), and MaxHeaderBytes + 320 over HTTP/2: it stays as the bound on
// memory, past which Go answers 431 itself.
func LimitHeaders(next http.Handler, limit int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := HeaderListSize(r); n > limit {
			WriteStatus(w, http.StatusRequestHeaderFieldsTooLarge, codes.ResourceExhausted,
				fmt.Sprintf("the request's headers are %d bytes, over the limit of %d (name + value + 32 bytes per field, the method, scheme, host and path included)", n, limit))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HeaderListSize is r's header list as HTTP/2 counts it (RFC 9113 section
// 6.5.2): every field's name + value + 32 bytes, the pseudo-header fields
// :method, :scheme, :authority and :path included. Over HTTP/1.1 they are
// the method, http or https, the Host header and the request target; the
// Transfer-Encoding header, which Go takes out of r.Header, is counted as
// Go read it.
func HeaderListSize(r *http.Request) int {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	n := middleware.HeaderFieldSize(":method", r.Method) +
		middleware.HeaderFieldSize(":scheme", scheme) +
		middleware.HeaderFieldSize(":authority", r.Host) +
		middleware.HeaderFieldSize(":path", r.RequestURI)
	for name, vs := range r.Header {
		for _, v := range vs {
			n += middleware.HeaderFieldSize(name, v)
		}
	}
	if len(r.TransferEncoding) > 0 {
		n += middleware.HeaderFieldSize("Transfer-Encoding", strings.Join(r.TransferEncoding, ", "))
	}
	return n
}
