package cli

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestRetryHintRepeatsTheSameRequest: a write whose outcome is unknown
// says how to rerun it as the same request: its request id and, for a
// relative --expires, the time it stood for (rerun, "720h" would be
// another expiry, another body, and the server would refuse the retry).
func TestRetryHintRepeatsTheSameRequest(t *testing.T) {
	at, err := parseExpiry("720h")
	if err != nil {
		t.Fatal(err)
	}
	msg := writeErr(status.Error(codes.Unavailable, "x"), retryFlags("6f1c2d9e-8a47-4b6e-9a1f-2c3d4e5f6a7b", timestamppb.New(at))).Error()
	_, hint, ok := strings.Cut(msg, "--expires ")
	if !ok || !strings.Contains(msg, "--request-id 6f1c2d9e-8a47-4b6e-9a1f-2c3d4e5f6a7b") {
		t.Fatalf("retry hint %q lacks the request id or the expiry", msg)
	}
	again, err := parseExpiry(strings.Fields(hint)[0])
	if err != nil || !timestamppb.New(again).AsTime().Equal(timestamppb.New(at).AsTime()) {
		t.Errorf("the hint's expiry %q reads back as %v (%v), want %v", strings.Fields(hint)[0], again, err, at)
	}
	if strings.Contains(writeErr(status.Error(codes.Unavailable, "x"), retryFlags("id", nil)).Error(), "--expires") {
		t.Error("a write without an expiry got an --expires hint")
	}
}
