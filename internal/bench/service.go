package bench

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/service"
)

const benchAdminToken = "bench-admin-token-0123456789"

// startService runs keyservice in mode on the bench database.
func (e *env) startService(ctx context.Context, mode string) (*server.Server, func(), error) {
	cfg := config.Defaults()
	cfg.DatabaseURL = e.svcURL
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokens = []string{benchAdminToken}
	// The bench measures the validation path, not the callers' budgets.
	cfg.CallerRate, cfg.CallerBurst = 1e9, 1<<30
	cfg.FailedRate, cfg.FailedBurst = 1e9, 1<<30
	cfg.KeyRate = apikey.RateLimit{Limit: 1_000_000_000, Period: time.Second}
	cfg.PositiveSize = max(100_000, e.cfg.Keys)
	cfg.SigningKeys, _ = keys.ParseSigningKeys(benchSigningKeys)
	var opts []server.Option
	switch mode {
	case "naive":
		opts = append(opts, server.WithValidator(func(d server.Deps) service.Validator { return naive{format: d.Format, store: d.Store} }))
	case "ceiling":
		opts = append(opts, server.WithValidator(func(server.Deps) service.Validator { return newCeiling() }))
	}
	sctx, cancel := context.WithCancel(ctx)
	// Request logs are discarded (the same in every mode).
	s, err := server.New(sctx, cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(sctx); close(done) }()
	stop := func() { cancel(); <-done }
	select {
	case <-s.Ready():
	case <-time.After(2 * time.Minute):
		stop()
		return nil, nil, errors.New("service not ready after 2 minutes")
	}
	return s, stop, nil
}

// scrape reads one metric (summed over its series) from the service's
// /metrics; 0 when it cannot be read.
func scrape(s endpoint, name string) float64 {
	return scrapeURL(httpScheme() + s.HTTPAddr().String() + "/metrics")(name)
}

// scrapeURL reads a /metrics page once and returns a reader of its
// metrics (each summed over its series; 0 when absent or unreadable).
func scrapeURL(url string) func(name string) float64 {
	client := http.DefaultClient
	if dialTLS != nil {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: dialTLS}}
	}
	resp, err := client.Get(url)
	if err != nil {
		return func(string) float64 { return 0 }
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return func(string) float64 { return 0 }
	}
	return func(name string) float64 { return sum(families, name) }
}

func sum(families map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	for _, m := range families[name].GetMetric() {
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}
