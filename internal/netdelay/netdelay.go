// Package netdelay is a TCP proxy that delays every chunk it forwards, as a
// network hop to a remote database would: the bench's --db-latency and the
// tests of a database that is a millisecond away.
package netdelay

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to upstream and delays every chunk
// in each direction by delay, as a network hop would, without limiting
// throughput (chunks are queued, not slept on one by one).
type Proxy struct {
	l        net.Listener
	upstream string
	delay    time.Duration
	wg       sync.WaitGroup
}

func Start(upstream string, delay time.Duration) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, upstream: upstream, delay: delay}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) Close() {
	p.l.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer u.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(ctx, u, c); cancel() })
	wg.Go(func() { p.pipe(ctx, c, u); cancel() })
	<-ctx.Done()
	c.Close()
	u.Close()
	wg.Wait()
}

type chunk struct {
	due  time.Time
	data []byte
}

// pipe copies src to dst, each chunk delivered delay after it was read.
func (p *Proxy) pipe(ctx context.Context, dst io.Writer, src io.Reader) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case q <- chunk{due: time.Now().Add(p.delay), data: buf[:n]}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				return
			}
			return
		}
	}
}
