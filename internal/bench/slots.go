package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SlotsResult: every connection slot of the server taken by other clients,
// then a burst of first-seen valid keys on a replica (issue 28).
type SlotsResult struct {
	Ran  bool   `json:"ran"`
	Note string `json:"note,omitempty"`
	// Taken: connections the bench opened until the server refused one
	// (SQLSTATE 53300).
	Taken   int   `json:"slots_taken"`
	Keys    int   `json:"keys"`
	Valid   int64 `json:"valid"`
	Refused int64 `json:"valid_refused"`
	// Waits and SlotRefusals: the replica's keyservice_db_slot_* counters
	// over the burst.
	Waits        float64 `json:"slot_waits"`
	SlotRefusals float64 `json:"slot_refusals"`
}

// noSlots takes every free connection slot of the bench's server, then
// validates each of keys once on s (none of them in its memory), with the
// bench's workers, and gives the slots back.
func (e *env) noSlots(ctx context.Context, s endpoint, keys []string) SlotsResult {
	res := SlotsResult{Keys: len(keys)}
	if e.cluster == nil {
		res.Note = "skipped: needs the throwaway cluster (unset DATABASE_URL); it takes every connection slot of the server"
		return res
	}
	var hogs []*pgx.Conn
	defer func() {
		for _, c := range hogs {
			c.Close(context.Background())
		}
	}()
	for len(hogs) < 10_000 {
		c, err := pgx.Connect(ctx, e.dbURL)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "53300" {
				res.Note = "filling the server: " + err.Error()
				return res
			}
			break
		}
		hogs = append(hogs, c)
	}
	res.Ran, res.Taken = true, len(hogs)
	g, err := newGRPC(s.GRPCAddr().String(), e.cfg.Conns)
	if err != nil {
		res.Note = err.Error()
		return res
	}
	defer g.close()
	waits0, refusals0 := scrape(s, "keyservice_db_slot_waits_total"), scrape(s, "keyservice_db_slot_refusals_total")
	var next, valid, refused atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < e.cfg.Workers; w++ {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(keys)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				code, err := g.validate(ctx, w, keys[i])
				switch {
				case err != nil:
					refused.Add(1)
				case code == "CODE_VALID":
					valid.Add(1)
				}
			}
		})
	}
	wg.Wait()
	res.Valid, res.Refused = valid.Load(), refused.Load()
	res.Waits = scrape(s, "keyservice_db_slot_waits_total") - waits0
	res.SlotRefusals = scrape(s, "keyservice_db_slot_refusals_total") - refusals0
	return res
}

func (r SlotsResult) writeMarkdown(w io.Writer) {
	if !r.Ran {
		fmt.Fprintf(w, "- **Server out of connection slots**: %s\n", r.Note)
		return
	}
	fmt.Fprintf(w, "- **Server out of connection slots** (%d more connections opened until PostgreSQL refused one, then %d first-seen valid keys): %d VALID, %d refused; the replica waited for its open connections %.0f times and gave up %.0f times.\n",
		r.Taken, r.Keys, r.Valid, r.Refused, r.Waits, r.SlotRefusals)
}
