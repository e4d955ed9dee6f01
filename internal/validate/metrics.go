package validate

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/outcome"
)

// Path is the step of the validation path that gave an answer.
type Path int

// Steps, cheapest first.
const (
	PathShape Path = iota
	// PathKeyspace: the key's prefix (or, once found, its record) is of a
	// keyspace the call may not see: NOT_FOUND, as for an unknown key.
	PathKeyspace
	PathChecksum
	PathSignature
	PathNegativeCache
	PathPositiveCache
	// PathMemory: memory mode's record of the key (first use, no lookup).
	PathMemory
	PathFilter
	PathLookup
	numPaths
)

func (p Path) String() string {
	return [...]string{"shape", "keyspace", "checksum", "signature", "negative_cache", "positive_cache", "memory", "filter", "lookup"}[p]
}

// codeUnavailable indexes the answers metric for calls that got no answer.
const codeUnavailable outcome.Code = 0

// Reasons a lookup is refused (answered UNAVAILABLE).
const (
	refusedDeadline  = iota // not answered within LookupTimeout: the backlog is more than the database carries in time
	refusedQueueFull        // the queue holds more than can be answered within a deadline
	refusedStoreDown        // the statement failed: database down or too slow
	numRefusals
)

type metrics struct {
	answers            [numPaths][]prometheus.Counter // by outcome.Code
	lookups            *prometheus.CounterVec
	lookupRefusals     [numRefusals]prometheus.Counter
	batchSize          prometheus.Histogram
	queueWait          prometheus.Histogram
	lookupQueue        prometheus.Gauge
	statementsInFlight prometheus.Gauge
	refreshes          prometheus.Counter
	prefetches         prometheus.Counter
	warmed             prometheus.Counter
	staleServed        prometheus.Counter
	events             *prometheus.CounterVec
	syncSeconds        prometheus.Histogram
	syncRows           prometheus.Counter
	reads              *prometheus.CounterVec // lookups and loads, by where they went (read replica or primary)
	buildSeconds       prometheus.Histogram
	syncErrors         *prometheus.CounterVec
	usageFlushes       prometheus.Counter
	formats            []prometheus.Counter // by keys.Kind+1 (0: unknown)
	filterProbes       prometheus.Counter
	fullReads          prometheus.Counter
	snapshotLoads      prometheus.Counter
	snapshotWrites     prometheus.Counter
	snapshotsIgnored   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, v *Validator) *metrics {
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_validate_answers_total",
		Help: "Validate answers by outcome code and by the step of the path that gave them (UNAVAILABLE: no answer could be given).",
	}, []string{"code", "path"})
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_lookups_total",
			Help: "Database lookups made for Validate, by result (found, not_found, unavailable, error).",
		}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyservice_lookup_batch_size",
			Help:    "Distinct hashes per lookup statement.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyservice_lookup_queue_wait_seconds",
			Help:    "Time a lookup waited for a statement to take it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 9),
		}),
		lookupQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyservice_lookup_queue",
			Help: "Lookups waiting for a statement.",
		}),
		statementsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyservice_lookup_statements_in_flight",
			Help: "Lookup statements running (at most KEYSERVICE_LOOKUP_CONCURRENCY).",
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_cache_refreshes_total",
			Help: "Positive-cache entries refreshed ahead of expiry in the background.",
		}),
		prefetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_memory_prefetches_total",
			Help: "Records fetched in the background in memory mode after a change whose record was not in hand (another replica's creation or update).",
		}),
		warmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_cache_warmed_keys_total",
			Help: "Recently used keys put in the positive cache after a filter load (warm start).",
		}),
		staleServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_positive_cache_stale_served_total",
			Help: "Answers served from a stale positive-cache entry because the database could not be reached.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_key_events_applied_total",
			Help: "Key events applied to memory, by kind and source (local, notify, sync).",
		}, []string{"kind", "source"}),
		syncRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_sync_rows_total",
			Help: "Rows read by incremental syncs (in pages of KEYSERVICE_SYNC_PAGE_SIZE).",
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_read_routing_total",
			Help: "Reads of the validation path with KEYSERVICE_DATABASE_READ_URL set, by kind (lookup, scan, warm, snapshot) and server (replica, primary: the key changed within the replica's lag, or the replica behind or failing).",
		}, []string{"kind", "server"}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyservice_filter_sync_duration_seconds",
			Help:    "Duration of incremental syncs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyservice_filter_rebuild_duration_seconds",
			Help:    "Duration of full filter loads and rebuilds.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_filter_sync_errors_total",
			Help: "Failed filter loads, rebuilds, syncs and usage flushes.",
		}, []string{"op"}),
		usageFlushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_usage_flushes_total",
			Help: "Batched last_used_at writes.",
		}),
		filterProbes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_filter_probes_total",
			Help: "Keys tested against the Bloom filter (a key answered before the filter, such as a malformed or forged one, is not).",
		}),
		fullReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_filter_full_reads_total",
			Help: "Filter loads that read every active key from the table (the rest load the fleet's snapshot).",
		}),
		snapshotLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_filter_snapshot_loads_total",
			Help: "Filter loads from a snapshot another replica (or this one) wrote.",
		}),
		snapshotWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_filter_snapshot_writes_total",
			Help: "Filter snapshots this replica wrote for the fleet.",
		}),
		snapshotsIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_filter_snapshots_ignored_total",
			Help: "Snapshots not used, by reason: too_old, corrupt, settings (another false-positive rate), no_records (memory mode, a snapshot without records), budget (its records exceed the memory budget).",
		}, []string{"reason"}),
	}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_lookup_refusals_total",
		Help: "Lookups answered UNAVAILABLE, by reason: deadline (not answered within KEYSERVICE_LOOKUP_TIMEOUT: more backlog than the database carries in time), queue_full (more waiting than can be answered within a deadline), store_down (the statement failed).",
	}, []string{"reason"})
	formats := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_validate_formats_total",
		Help: "Presented keys by format: checksum, signed, each legacy format by name, unknown (no format's prefix).",
	}, []string{"format"})
	m.formats = append(m.formats, formats.WithLabelValues("unknown"))
	for _, name := range v.cfg.Format.KindNames() {
		m.formats = append(m.formats, formats.WithLabelValues(name))
	}
	for r, name := range [numRefusals]string{"deadline", "queue_full", "store_down"} {
		m.lookupRefusals[r] = refusals.WithLabelValues(name)
	}
	// The codes the validation path answers (outcome's table: up to the
	// key's own state, and VALID), and none (UNAVAILABLE).
	codes := []outcome.Code{codeUnavailable}
	for _, r := range outcome.All() {
		if r.Stage <= outcome.State || r.Code == outcome.Valid {
			codes = append(codes, r.Code)
		}
	}
	top := slices.Max(codes)
	for p := Path(0); p < numPaths; p++ {
		m.answers[p] = make([]prometheus.Counter, top+1)
		for _, c := range codes {
			name := c.String()
			if c == codeUnavailable {
				name = "UNAVAILABLE"
			}
			m.answers[p][c] = answers.WithLabelValues(name, p.String())
		}
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	cacheStat := func(cache string, f func(c cacheStats) uint64) func() float64 {
		return func() float64 { return float64(f(v.cacheStats(cache))) }
	}
	collectors := []prometheus.Collector{answers, m.lookups, refusals, m.batchSize, m.queueWait, m.lookupQueue,
		m.statementsInFlight, m.refreshes, m.prefetches, m.warmed, m.staleServed,
		m.events, m.syncSeconds, m.syncRows, m.reads, m.buildSeconds, m.syncErrors, m.usageFlushes,
		formats, m.filterProbes, m.fullReads, m.snapshotLoads, m.snapshotWrites, m.snapshotsIgnored,
		gauge("keyservice_filter_loaded", "1 once the filter has been loaded.", func() float64 {
			if v.filter.loaded() {
				return 1
			}
			return 0
		}),
		gauge("keyservice_filter_keys", "Keys added to the current filter.", func() float64 { return float64(v.filter.stats().keys) }),
		gauge("keyservice_filter_capacity", "Keys the current filter was sized for.", func() float64 { return float64(v.filter.stats().capacity) }),
		gauge("keyservice_filter_bits", "Size of the current filter in bits.", func() float64 { return float64(v.filter.stats().bits) }),
		gauge("keyservice_filter_false_positive_rate", "Estimated false-positive rate of the current filter.", func() float64 { return v.filter.stats().fpRate }),
		gauge("keyservice_memory_mode", "1 while every active key's record is in memory (memory mode), 0 while the filter and caches answer (the records do not fit KEYSERVICE_MEMORY_BUDGET).", func() float64 {
			if v.res.active() {
				return 1
			}
			return 0
		}),
		gauge("keyservice_memory_records", "Key records held in memory mode.", func() float64 { n, _ := v.res.stats(); return float64(n) }),
		gauge("keyservice_memory_record_bytes", "Bytes the records held in memory mode take (arenas and map slots, as counted).", func() float64 { _, b := v.res.stats(); return float64(b) }),
		gauge("keyservice_listen_up", "1 while the LISTEN connection that brings other replicas' changes is up (0: incremental sync alone, more often).", func() float64 {
			if v.streamDown() {
				return 0
			}
			return 1
		}),
		gauge("keyservice_read_replica_behind_bytes", "Bytes of WAL the read replica (KEYSERVICE_DATABASE_READ_URL) was last seen behind the primary; keys changed within it are read on the primary.", func() float64 {
			_, b := v.ReadReplica()
			return float64(b)
		}),
		gauge("keyservice_lookup_slots", "Lookup statements allowed at once (KEYSERVICE_LOOKUP_CONCURRENCY).", func() float64 { return float64(v.cfg.LookupConcurrency) }),
	}
	for _, c := range []string{"positive", "negative"} {
		collectors = append(collectors,
			counter("keyservice_cache_"+c+"_hits_total", "Hits in the "+c+" cache.", cacheStat(c, func(s cacheStats) uint64 { return s.hits })),
			counter("keyservice_cache_"+c+"_misses_total", "Misses in the "+c+" cache.", cacheStat(c, func(s cacheStats) uint64 { return s.misses })),
			counter("keyservice_cache_"+c+"_evictions_total", "Evictions from the "+c+" cache (size or TTL).", cacheStat(c, func(s cacheStats) uint64 { return s.evictions })),
			gauge("keyservice_cache_"+c+"_entries", "Entries in the "+c+" cache.", cacheStat(c, func(s cacheStats) uint64 { return s.size })),
		)
	}
	for _, c := range collectors {
		reg.MustRegister(c)
	}
	return m
}
