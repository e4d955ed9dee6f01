package server

import (
	"syscall"
	"testing"
)

// TestConnectionCapsFollowTheFileLimit: the default caps leave a tenth of
// the descriptors (at least 512) to the process, share the rest between
// the two listeners, and give one address an eighth of a listener's;
// settings win.
func TestConnectionCapsFollowTheFileLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		maxConns, perAddr int
		fds               uint64
		want              connCaps
	}{
		{0, 0, 20_000, connCaps{perListener: 9_000, perAddr: 1_125, fds: 20_000}},
		{0, 0, 1_024, connCaps{perListener: 256, perAddr: 32, fds: 1_024}},
		{0, 0, 256, connCaps{perListener: 64, perAddr: 8, fds: 256}},
		{0, 0, 1 << 30, connCaps{perListener: 471_859, perAddr: 58_982, fds: 1 << 30}},
		{500, 0, 20_000, connCaps{perListener: 500, perAddr: 62, fds: 20_000}},
		{0, 7, 20_000, connCaps{perListener: 9_000, perAddr: 7, fds: 20_000}},
	} {
		if got := connectionCaps(c.maxConns, c.perAddr, c.fds); got != c.want {
			t.Errorf("connectionCaps(%d, %d, %d) = %+v, want %+v", c.maxConns, c.perAddr, c.fds, got, c.want)
		}
	}
}

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
