package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/grpclog"
)

// grpc-go and grpc-gateway log through grpclog, and go-redis through its
// own logger, which by default write plain text to stderr (for example
// grpc-gateway's "Value of HTTP header … contains non-ASCII value" on a
// client's odd header, go-redis's "failed to dial" while Redis is down).
// Both are pointed, once and before any of their code runs, at the
// structured logger of the server (the latest one built), with a source
// attribute (grpc, redis): one log format for the whole process, and the
// server's limit on lines of one kind (internal/loglimit) holds for them.

var libLog atomic.Pointer[slog.Logger]

func init() {
	grpclog.SetLoggerV2(slogGRPC{})
	redis.SetLogger(slogRedis{})
}

// useForLibraryLogs makes log receive grpc-go's, grpc-gateway's and
// go-redis's lines.
func useForLibraryLogs(log *slog.Logger) { libLog.Store(log) }

func logLibraryLine(lvl slog.Level, source, msg string) {
	l := libLog.Load()
	if l == nil {
		l = slog.Default()
	}
	if l.Enabled(context.Background(), lvl) {
		l.Log(context.Background(), lvl, msg, "source", source)
	}
}

// slogRedis is go-redis's logger on slog: what it logs is trouble with
// Redis (a failed dial, a dropped connection), at WARN.
type slogRedis struct{}

func (slogRedis) Printf(_ context.Context, format string, v ...any) {
	logLibraryLine(slog.LevelWarn, "redis", fmt.Sprintf(format, v...))
}

// slogGRPC is a grpclog.LoggerV2 on slog. grpc-go's INFO lines (connection
// states) go to DEBUG; its warnings and errors to WARN.
type slogGRPC struct{}

func (slogGRPC) log(lvl slog.Level, msg string) { logLibraryLine(lvl, "grpc", msg) }

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
