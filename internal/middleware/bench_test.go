package middleware

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// BenchmarkMetrics is the cost of counting and timing one call, against
// the bare handler measured in the same run.
func BenchmarkMetrics(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/keyservice.v1.KeyService/Validate"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(ctx, nil)
		}
	})
	b.Run("metrics", func(b *testing.B) {
		ic := Metrics(prometheus.NewRegistry())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ic(ctx, nil, info, h)
		}
	})
}
