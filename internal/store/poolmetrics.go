package store

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports pgxpool statistics at scrape time.
type poolCollector struct {
	pool *pgxpool.Pool
	desc map[string]*prometheus.Desc
}

// NewPoolCollector exports pool statistics as keyservice_db_pool_* metrics.
func NewPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("keyservice_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{pool: pool, desc: map[string]*prometheus.Desc{
		"max":        d("max_conns", "Pool size (MaxConns)."),
		"total":      d("conns", "Open connections."),
		"acquired":   d("acquired_conns", "Connections in use."),
		"idle":       d("idle_conns", "Idle connections."),
		"acquires":   d("acquires_total", "Successful acquires."),
		"waits":      d("acquire_waits_total", "Acquires that had to wait for a connection."),
		"wait_secs":  d("acquire_wait_seconds_total", "Time spent waiting for connections."),
		"canceled":   d("canceled_acquires_total", "Acquires canceled by their context (including the acquire timeout)."),
		"empty_wait": d("empty_acquire_wait_seconds_total", "Time acquires waited on an empty pool."),
	}}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.desc[k], prometheus.GaugeValue, v) }
	n := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.desc[k], prometheus.CounterValue, v) }
	g("max", float64(s.MaxConns()))
	g("total", float64(s.TotalConns()))
	g("acquired", float64(s.AcquiredConns()))
	g("idle", float64(s.IdleConns()))
	n("acquires", float64(s.AcquireCount()))
	n("waits", float64(s.EmptyAcquireCount()))
	n("wait_secs", s.AcquireDuration().Seconds())
	n("canceled", float64(s.CanceledAcquireCount()))
	n("empty_wait", s.EmptyAcquireWaitTime().Seconds())
}
