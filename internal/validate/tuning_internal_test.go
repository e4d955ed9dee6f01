package validate

import (
	"strings"
	"testing"
	"time"
)

// testTuning is a Tuning New accepts. The service's defaults are declared
// in internal/config, which imports this package, so tests inside it
// cannot read them; the external tests do (config.Defaults().Tuning).
var testTuning = Tuning{
	FilterFPRate: 0.01, SyncInterval: time.Second, SyncOverlap: time.Second, RebuildInterval: time.Hour,
	EndedKeptFor: time.Hour, PositiveTTL: time.Minute, PositiveSize: 1000, StaleFor: time.Minute,
	NegativeTTL: time.Minute, NegativeSize: 1000, LookupConcurrency: 1, LookupBatch: 10,
	LookupTimeout: time.Second, UsageFlushInterval: time.Second,
}

// TestNewRefusesATuningItCannotRunWith: a Tuning left zero (a Config built
// by hand, without config's defaults) is a programming error New names,
// field by field, instead of running with zero-sized caches or tickers.
func TestNewRefusesATuningItCannotRunWith(t *testing.T) {
	if _, err := New(Config{Store: nopStore{}, Tuning: testTuning}); err != nil {
		t.Fatalf("a sane Tuning refused: %v", err)
	}
	_, err := New(Config{Store: nopStore{}})
	if err == nil {
		t.Fatal("a zero Tuning accepted")
	}
	for _, name := range []string{"FilterFPRate", "SyncInterval", "PositiveSize", "LookupBatch", "UsageFlushInterval"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s not named: %v", name, err)
		}
	}
	bad := testTuning
	bad.FilterFPRate = 1
	if _, err := New(Config{Store: nopStore{}, Tuning: bad}); err == nil || !strings.Contains(err.Error(), "FilterFPRate") {
		t.Errorf("a false-positive rate of 1 accepted: %v", err)
	}
}
