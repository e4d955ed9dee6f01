package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/server"
)

func TestTracingSpansCarryThePathNeverTheKey(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	e := start(t, withServerOption(server.WithTracerProvider(tp)))
	ctx := context.Background()
	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "t", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: created.GetSecret()}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"garbage"}`))
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var validates []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), created.GetSecret()) || strings.Contains(a.Value.Emit(), created.GetSecret()[3:20]) {
				t.Fatalf("span %s attribute %s holds the key", s.Name, a.Key)
			}
		}
		if s.Name == "keyservice.v1.KeyService/Validate" {
			validates = append(validates, s)
		}
	}
	if len(validates) != 2 {
		t.Fatalf("%d Validate spans, want 2 (gRPC and REST)", len(validates))
	}
	attrs := func(s tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, a := range s.Attributes {
			m[string(a.Key)] = a.Value.Emit()
		}
		return m
	}
	g, r := attrs(validates[0]), attrs(validates[1])
	// A first-seen key, answered from memory mode's records (the default).
	if g["keyservice.validate.path"] != "memory" || g["keyservice.validate.code"] != "CODE_VALID" || g["keyservice.transport"] != "grpc" {
		t.Errorf("gRPC span: %v", g)
	}
	if r["keyservice.validate.path"] != "shape" || r["keyservice.validate.code"] != "CODE_MALFORMED" || r["keyservice.transport"] != "rest" {
		t.Errorf("REST span: %v", r)
	}
	if got := fmt.Sprint(validates[1].Parent.TraceID()); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("REST span did not continue the caller's trace: parent trace %s", got)
	}
}
