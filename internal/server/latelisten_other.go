//go:build !linux

package server

import (
	"net"
	"time"
)

// lateListener elsewhere than Linux listens at once (binding without
// listening is done with Linux's socket calls): a replica then refuses
// gRPC calls with UNAVAILABLE until it is ready, which a balancer that
// reads gRPC statuses passes on, and nginx does not.
type lateListener struct{ net.Listener }

func bindLate(addr string) (*lateListener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &lateListener{l}, nil
}

func (l *lateListener) open() error { return nil }

// stopTaking does nothing here: the port closes at once.
func (l *lateListener) stopTaking(time.Duration) error { return nil }
