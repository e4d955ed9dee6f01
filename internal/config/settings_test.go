package config

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryFieldIsDeclaredOnce: each setting has a variable, a flag named
// after it, a kind and help; no variable or flag is declared twice; and
// every exported field of Config (with the sub-configs it embeds) is
// bound to exactly one declaration, so a field cannot be added without
// its variable, flag, default, rule and docs.
func TestEveryFieldIsDeclaredOnce(t *testing.T) {
	t.Parallel()
	var c Config
	bound := map[uintptr]string{}
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, s := range c.settings() {
		if s.Env == "" || s.Flag == "" || s.Type == "" || s.Written == "" || s.Help == "" {
			t.Errorf("%s/%s: incomplete declaration %+v", s.Env, s.Flag, s)
		}
		if want := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.Env, "KEYSERVICE_")), "_", "-"); s.Flag != want {
			t.Errorf("%s: flag --%s, want --%s", s.Env, s.Flag, want)
		}
		if envs[s.Env] || flags[s.Flag] {
			t.Errorf("%s/--%s declared twice", s.Env, s.Flag)
		}
		envs[s.Env], flags[s.Flag] = true, true
		if strings.Contains(s.Help, "`") && strings.Count(s.Help, "`")%2 != 0 {
			t.Errorf("%s: unbalanced ` in help", s.Env)
		}
		// The Value's pointer fields are the Config fields it fills.
		v := reflect.ValueOf(s.value()).Elem()
		for i := range v.NumField() {
			f := v.Field(i)
			if f.Kind() != reflect.Pointer || f.Type().Elem() == reflect.TypeFor[error]() {
				continue
			}
			addr := f.Pointer()
			if other, ok := bound[addr]; ok {
				t.Errorf("%s and %s fill the same field", other, s.Env)
			}
			bound[addr] = s.Env
		}
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			switch {
			case !sf.IsExported():
			case sf.Anonymous:
				walk(v.Field(i), path+sf.Name+".")
			default:
				if _, ok := bound[v.Field(i).Addr().Pointer()]; !ok {
					t.Errorf("Config.%s%s has no declaration in settings.go", path, sf.Name)
				}
			}
		}
	}
	walk(reflect.ValueOf(&c).Elem(), "")
}

// TestDocsTableIsGenerated: docs/configuration.md holds the table the
// declarations make (`make generate` writes it; `make check` fails when it
// was not run).
func TestDocsTableIsGenerated(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := UpdateDocs(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want != string(doc) {
		t.Error("docs/configuration.md is out of date: run make generate (or go generate ./internal/config)")
	}
	for _, s := range Settings() {
		if !strings.Contains(string(doc), "`"+s.Env+"`") {
			t.Errorf("docs/configuration.md lacks %s", s.Env)
		}
	}
}

// TestDefaultsAreTheDeclaredOnes: Defaults, --help and the docs show one
// default per setting, and the defaults pass Validate (with a database).
func TestDefaultsAreTheDeclaredOnes(t *testing.T) {
	t.Parallel()
	c := Defaults()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if err := c.Parse(fs, nil, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		if got := fs.Lookup(s.Flag).DefValue; got != s.Default {
			t.Errorf("--%s: --help shows default %q, the docs %q", s.Flag, got, s.Default)
		}
	}
	if c.FilterFPRate != 0.001 || c.PositiveSize != 100_000 || !c.Snapshots || c.LogFormat != "json" {
		t.Errorf("defaults %+v", c)
	}
	c.DatabaseURL = "postgres://x/y"
	if err := c.Check(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestBadEnvironmentValuesAreReportedTogether: every bad variable is
// named in one error, not only the first.
func TestBadEnvironmentValuesAreReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := parse(t, nil, map[string]string{
		"KEYSERVICE_DB_MAX_CONNS":   "many",
		"KEYSERVICE_SYNC_INTERVAL":  "soon",
		"KEYSERVICE_FILTER_FP_RATE": "low",
		"KEYSERVICE_MIGRATE":        "perhaps",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, env := range []string{"KEYSERVICE_DB_MAX_CONNS", "KEYSERVICE_SYNC_INTERVAL", "KEYSERVICE_FILTER_FP_RATE", "KEYSERVICE_MIGRATE"} {
		if !strings.Contains(err.Error(), env) {
			t.Errorf("%s not reported: %v", env, err)
		}
	}
}

// TestFilterRateHasOneRule: the Bloom filter's false-positive rate is
// refused at 0.5 and above, whatever reads it (the rule of its
// declaration; validate.New only refuses what it cannot compute with).
func TestFilterRateHasOneRule(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0.5", "0.7", "0", "-0.1"} {
		cfg, err := parse(t, nil, map[string]string{"KEYSERVICE_FILTER_FP_RATE": v})
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL = "postgres://x/y"
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "KEYSERVICE_FILTER_FP_RATE: must be between 0 and 0.5") {
			t.Errorf("%s: %v", v, err)
		}
	}
	cfg, _ := parse(t, nil, map[string]string{"KEYSERVICE_FILTER_FP_RATE": "0.25"})
	cfg.DatabaseURL = "postgres://x/y"
	if err := cfg.Check(); err != nil || cfg.FilterFPRate != 0.25 {
		t.Errorf("0.25: %v, %v", cfg.FilterFPRate, err)
	}
}

// TestBooleansAsDocumented: the words the docs list for booleans, in any
// case, from a variable or a flag; anything else is refused.
func TestBooleansAsDocumented(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    string
		want bool
	}{{"true", true}, {"TRUE", true}, {"1", true}, {"t", true}, {"yes", true}, {"On", true},
		{"false", false}, {"F", false}, {"0", false}, {"no", false}, {"off", false}, {"", false}} {
		cfg, err := parse(t, nil, map[string]string{"KEYSERVICE_MIGRATE": tt.v, "KEYSERVICE_FILTER_SNAPSHOTS": tt.v})
		if err != nil || cfg.Migrate != tt.want || cfg.Snapshots != tt.want {
			t.Errorf("%q: migrate %v, snapshots %v, %v", tt.v, cfg.Migrate, cfg.Snapshots, err)
		}
		if tt.v == "" {
			continue
		}
		cfg, err = parse(t, []string{"--migrate=" + tt.v}, nil)
		if err != nil || cfg.Migrate != tt.want {
			t.Errorf("--migrate=%s: %v, %v", tt.v, cfg.Migrate, err)
		}
	}
	if cfg, err := parse(t, []string{"--migrate"}, nil); err != nil || !cfg.Migrate {
		t.Errorf("--migrate alone: %v, %v", cfg.Migrate, err)
	}
	if _, err := parse(t, nil, map[string]string{"KEYSERVICE_MIGRATE": "perhaps"}); err == nil {
		t.Error("perhaps accepted")
	}
}
