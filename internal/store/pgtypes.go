package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UseTypes makes cfg's connections send uuid.UUID in binary, as the
// 16 bytes it is. pgx otherwise finds no plan for it (uuid.UUID is a
// driver.Valuer, which pgx asks last, after building an error for each
// plan that does not fit), formats it as text and lets the server parse
// it: a flush of 10,000 usage rows spent ~85% of its client time so
// (BenchmarkWriteUsage's profile). Every pool the service, its tests and
// the bench open goes through here.
func UseTypes(cfg *pgxpool.Config) {
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		registerTypes(c.TypeMap())
		if after != nil {
			return after(ctx, c)
		}
		return nil
	}
}

func registerTypes(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUID}, m.TryWrapEncodePlanFuncs...)
}

func tryWrapUUID(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if u, ok := value.(uuid.UUID); ok {
		return &uuidPlan{}, [16]byte(u), true
	}
	return nil, nil, false
}

type uuidPlan struct{ next pgtype.EncodePlan }

func (p *uuidPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidPlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode([16]byte(value.(uuid.UUID)), buf)
}
