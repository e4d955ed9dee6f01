package connlimit

// Caps is the connection caps' part of the service's settings (each
// declared in internal/config, which embeds Caps in its Config): a 0 is
// derived from the open file limit by Derive. Config takes Caps whole.
type Caps struct {
	// MaxConns is the most connections a listener holds. Its last tenth
	// (at least one) is kept for addresses that hold none yet: a listener
	// filled by a few addresses still admits a health probe or a new
	// caller, while those addresses are refused.
	MaxConns int
	// MaxConnsPerAddr is the most connections one client address holds
	// on a listener (an IPv6 address counts as its /64, which one client
	// usually has whole).
	MaxConnsPerAddr int
}

// maxFDsCounted bounds the descriptor limit the default caps are derived
// from: a limit of a billion (some containers) would give caps that never
// bite.
const maxFDsCounted = 1 << 20

// Derive returns the caps with each 0 derived from fds, the process's
// open file limit, for a process with two listeners: a tenth of the
// descriptors (at least 512) stays with the process (the database pool,
// Redis, files, the connections being refused), the two listeners share
// the rest, and one address may hold an eighth of a listener's. Idle
// connections from a few addresses used to take every descriptor (2 x
// 10,200 of them), and then nobody was served.
func (c Caps) Derive(fds uint64) Caps {
	n := min(fds, maxFDsCounted)
	reserve := max(n/10, 512)
	if c.MaxConns == 0 {
		c.MaxConns = 64 // a descriptor limit below 640: serve a little
		if n > reserve+128 {
			c.MaxConns = int(n-reserve) / 2
		}
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = max(c.MaxConns/8, 1)
	}
	return c
}
