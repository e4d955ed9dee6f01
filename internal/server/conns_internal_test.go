package server

import (
	"syscall"
	"testing"
)

// TestFileLimitIsRaisedToTheHardLimit: a soft limit below the hard one is
// raised at start.
func TestFileLimitIsRaisedToTheHardLimit(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	lowered := l
	lowered.Cur = l.Max - 1 // harmless to tests running beside this one
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) })
	got, err := fileLimit()
	if err != nil || got != l.Max {
		t.Fatalf("fileLimit() = %d, %v; want the hard limit %d", got, err, l.Max)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil || now.Cur != l.Max {
		t.Fatalf("soft limit %d after fileLimit, want %d", now.Cur, l.Max)
	}
}
