package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"google.golang.org/grpc/grpclog"
)

// grpc-go and grpc-gateway log through grpclog, which by default writes
// plain text to stderr (for example grpc-gateway's "Value of HTTP header …
// contains non-ASCII value" on a client's odd header). It is pointed, once
// and before any gRPC code runs, at the structured logger of the server
// (the latest one built): one log format for the whole process.

var grpcLog atomic.Pointer[slog.Logger]

func init() { grpclog.SetLoggerV2(slogGRPC{}) }

// useForGRPCLogs makes log receive grpc-go's and grpc-gateway's lines.
func useForGRPCLogs(log *slog.Logger) { grpcLog.Store(log) }

// slogGRPC is a grpclog.LoggerV2 on slog. grpc-go's INFO lines (connection
// states) go to DEBUG; its warnings and errors to WARN.
type slogGRPC struct{}

func (slogGRPC) log(lvl slog.Level, msg string) {
	l := grpcLog.Load()
	if l == nil {
		l = slog.Default()
	}
	if l.Enabled(context.Background(), lvl) {
		l.Log(context.Background(), lvl, msg, "source", "grpc")
	}
}

func (g slogGRPC) Info(args ...any)   { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g slogGRPC) Infoln(args ...any) { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g slogGRPC) Infof(format string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g slogGRPC) Warning(args ...any)   { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g slogGRPC) Warningln(args ...any) { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g slogGRPC) Warningf(format string, args ...any) {
	g.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}

// Errors reported by grpc-go and grpc-gateway are mostly about what a
// client sent (a bad header, a bad content type): WARN, not ERROR.
func (g slogGRPC) Error(args ...any)   { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g slogGRPC) Errorln(args ...any) { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g slogGRPC) Errorf(format string, args ...any) {
	g.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}

// Fatal keeps grpclog's contract: log, then exit.
func (g slogGRPC) Fatal(args ...any) {
	g.log(slog.LevelError, fmt.Sprint(args...))
	os.Exit(1)
}
func (g slogGRPC) Fatalln(args ...any)               { g.Fatal(args...) }
func (g slogGRPC) Fatalf(format string, args ...any) { g.Fatal(fmt.Sprintf(format, args...)) }
func (slogGRPC) V(l int) bool                        { return l <= 0 }
