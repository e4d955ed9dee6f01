package connlimit

import "testing"

// TestCapsFollowTheFileLimit: the default caps leave a tenth of the
// descriptors (at least 512) to the process, share the rest between the
// two listeners, and give one address an eighth of a listener's;
// settings win.
func TestCapsFollowTheFileLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		set  Caps
		fds  uint64
		want Caps
	}{
		{Caps{}, 20_000, Caps{MaxConns: 9_000, MaxConnsPerAddr: 1_125}},
		{Caps{}, 1_024, Caps{MaxConns: 256, MaxConnsPerAddr: 32}},
		{Caps{}, 256, Caps{MaxConns: 64, MaxConnsPerAddr: 8}},
		{Caps{}, 1 << 30, Caps{MaxConns: 471_859, MaxConnsPerAddr: 58_982}},
		{Caps{MaxConns: 500}, 20_000, Caps{MaxConns: 500, MaxConnsPerAddr: 62}},
		{Caps{MaxConnsPerAddr: 7}, 20_000, Caps{MaxConns: 9_000, MaxConnsPerAddr: 7}},
	} {
		if got := c.set.Derive(c.fds); got != c.want {
			t.Errorf("%+v.Derive(%d) = %+v, want %+v", c.set, c.fds, got, c.want)
		}
	}
}
