package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting declares one setting: the environment variable and flag that
// set it, what its values look like, its default, its rule, its help, and
// the Config field it fills. Parse, Defaults, Check, --help and the
// table in docs/configuration.md are all made from the declarations in
// settings.go; nothing else lists the settings.
type Setting struct {
	Env  string // environment variable
	Flag string // flag of every command that reads the service's config
	// Help is one line; its `code` spans are markdown in the docs and
	// plain text in --help.
	Help string
	// Type names the kind of value ("duration", "whole number", ...);
	// Written says how a value of that kind is written (docs only).
	Type, Written string
	Rule          string // the rule in words (docs); "": any value of the type
	Default       string // the default as an operator writes it; "": none
	See           string // a markdown link for the docs (relative to docs/); optional
	// Secret: the value is a credential, shown nowhere (its parse never
	// fails, so the flag package cannot print it; Validate reports it).
	Secret bool

	arg      string                      // the value's name in --help
	value    func() flag.Value           // the bound field as a flag.Value
	register func(*flag.FlagSet, string) // how to add the flag (given its usage); nil: fs.Var(value())
	reset    func()                      // sets the field to its default
	check    func() error                // the rule; nil: none
}

// kind is a type of setting value: how it is parsed, printed and named.
type kind[T any] struct {
	typ, written, arg string
	parse             func(string) (T, error)
	format            func(T) string
	isBool            bool
}

// rule is a setting's rule: doc says it in words for the docs, check
// explains a value that breaks it (without naming the variable, which
// Check adds). A rule that reads other settings is a closure over the
// Config being declared.
type rule[T any] struct {
	doc   string
	check func(T) error
}

// anyValue is the rule of a setting that takes any value of its type.
func anyValue[T any]() rule[T] { return rule[T]{} }

// def declares a setting whose value lives in *p.
func def[T any](k kind[T], p *T, env, flagName string, dflt T, r rule[T], help string) Setting {
	s := Setting{
		Env: env, Flag: flagName, Help: help, Type: k.typ, Written: k.written, Rule: r.doc,
		Default: k.format(dflt), arg: k.arg,
		value: func() flag.Value { return &field[T]{p: p, k: k} },
		reset: func() { *p = dflt },
	}
	if r.check != nil {
		s.check = func() error { return r.check(*p) }
	}
	return s
}

// see adds a link to the setting's row in the docs.
func (s Setting) see(link string) Setting { s.See = link; return s }

// field is a Config field as a flag.Value.
type field[T any] struct {
	p *T
	k kind[T]
}

func (f *field[T]) String() string {
	if f == nil || f.p == nil || f.k.format == nil {
		// The flag package's zero value: --help shows a default that
		// differs from what this returns.
		var zero T
		switch z := any(zero).(type) {
		case bool:
			return strconv.FormatBool(z)
		case int, float64:
			return "0"
		case time.Duration:
			return "0s"
		}
		return ""
	}
	return f.k.format(*f.p)
}

func (f *field[T]) Set(s string) error {
	v, err := f.k.parse(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

func (f *field[T]) IsBoolFlag() bool { return f != nil && f.k.isBool }

// The kinds of values. Environment values are trimmed of surrounding
// white space before they are parsed (Parse).
var (
	text = kind[string]{
		typ: "string", arg: "string", written: "as is",
		parse:  func(s string) (string, error) { return s, nil },
		format: func(s string) string { return s },
	}
	whole = kind[int]{
		typ: "whole number", arg: "int", written: "base 10 only: `010` is ten",
		parse: func(s string) (int, error) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, errors.New("not a whole number")
			}
			return n, nil
		},
		format: strconv.Itoa,
	}
	number = kind[float64]{
		typ: "number", arg: "number", written: "a decimal number such as `2.5` or `0.001`",
		parse: func(s string) (float64, error) {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, errors.New("not a number")
			}
			return f, nil
		},
		format: func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) },
	}
	duration = kind[time.Duration]{
		typ: "duration", arg: "duration", written: "a number and a unit: `250ms`, `5s`, `1m`, `1h` (`ms`, `s`, `m`, `h`; `1h30m` too)",
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0, errors.New("not a duration such as 250ms, 5s or 1m")
			}
			return d, nil
		},
		format: ShortDuration,
	}
	// boolean reads what operators write in environment files as well as
	// what Go's flag package reads (which has no yes/no/on/off).
	boolean = kind[bool]{
		typ: "boolean", arg: "bool", isBool: true,
		written: "`true`/`false`, `1`/`0`, `t`/`f`, `yes`/`no` or `on`/`off`, in any case; an empty variable is false, the flag alone (`--migrate`) true",
		parse: func(s string) (bool, error) {
			switch strings.ToLower(s) {
			case "1", "t", "true", "yes", "on":
				return true, nil
			case "0", "f", "false", "no", "off", "":
				return false, nil
			}
			return false, errors.New("not a boolean (true or false, yes or no, on or off)")
		},
		format: strconv.FormatBool,
	}
	level = kind[slog.Level]{
		typ: "log level", arg: "level", written: "`debug`, `info`, `warn` or `error`, in any case",
		parse: func(s string) (slog.Level, error) {
			var l slog.Level
			if err := l.UnmarshalText([]byte(s)); err != nil {
				return 0, errors.New("not a log level (debug, info, warn or error)")
			}
			return l, nil
		},
		format: func(l slog.Level) string { return strings.ToLower(l.String()) },
	}
	list = kind[[]string]{
		typ: "list", arg: "list", written: "comma-separated; white space around an entry is ignored",
		parse:  func(s string) ([]string, error) { return splitList(s), nil },
		format: func(l []string) string { return strings.Join(l, ",") },
	}
)

// valueKind makes a kind of the flag.Value type of values.go that wrap
// gives for a field.
func valueKind[T any, V flag.Value](typ, arg, written string, wrap func(*T) V) kind[T] {
	return kind[T]{
		typ: typ, arg: arg, written: written,
		parse: func(s string) (T, error) {
			var v T
			err := wrap(&v).Set(s)
			return v, err
		},
		format: func(v T) string { return wrap(&v).String() },
	}
}

// ShortDuration prints a duration as operators write it: 1h, not 1h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Rules used by many settings.

func positive() rule[time.Duration] {
	return rule[time.Duration]{"> 0", func(d time.Duration) error {
		if d <= 0 {
			return fmt.Errorf("must be a positive duration such as 500ms or 5s, got %s", d)
		}
		return nil
	}}
}

func between(lo, hi int) rule[int] {
	return rule[int]{fmt.Sprintf("%d to %d", lo, hi), func(n int) error {
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d, got %d", lo, hi, n)
		}
		return nil
	}}
}

func atLeast(lo int) rule[int] {
	return rule[int]{fmt.Sprintf("≥ %d", lo), func(n int) error {
		if n < lo {
			return fmt.Errorf("must be at least %d, got %d", lo, n)
		}
		return nil
	}}
}

func oneOf(words ...string) rule[string] {
	doc := strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
	return rule[string]{"`" + strings.Join(words, "`, `") + "`", func(s string) error {
		if !slices.Contains(words, s) {
			return fmt.Errorf("must be %s, got %q", doc, s)
		}
		return nil
	}}
}

func positiveNumber(what string) rule[float64] {
	return rule[float64]{"> 0", func(f float64) error {
		if f <= 0 {
			return fmt.Errorf("must be a positive number %s, got %g", what, f)
		}
		return nil
	}}
}

// usage is the setting's line in --help.
func (s Setting) usage() string {
	help := strings.ReplaceAll(s.Help, "`", "")
	if s.arg == "" || s.Type == boolean.typ {
		return help + " (env " + s.Env + ")"
	}
	// The flag package names the value after the first `quoted` word.
	return help + " (`" + s.arg + "`, env " + s.Env + ")"
}

// Parse fills c from args and the environment (lookup; os.LookupEnv when
// nil). Values already in c are the defaults (Defaults, or a command's
// own). A flag given wins over its variable. Bad environment values are
// reported together, each naming its variable; a secret's value is never
// shown.
func (c *Config) Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	ss := c.settings()
	for _, s := range ss {
		if s.register != nil {
			s.register(fs, s.usage())
		} else {
			fs.Var(s.value(), s.Flag, s.usage())
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, s := range ss {
		v, ok := lookup(s.Env)
		if given[s.Flag] || !ok {
			continue
		}
		v = strings.TrimSpace(v) // a trailing newline from a file or a ConfigMap
		if err := fs.Set(s.Flag, v); err != nil {
			if s.Secret {
				errs = append(errs, fmt.Errorf("%s: %v", s.Env, err))
			} else {
				errs = append(errs, fmt.Errorf("%s: %v (got %q)", s.Env, err, v))
			}
		}
	}
	return errors.Join(errs...)
}

// Defaults returns the default configuration, as declared.
func Defaults() Config {
	var c Config
	for _, s := range c.settings() {
		s.reset()
	}
	return c
}

// Check explains every setting that breaks its rule, naming its
// variable, all together and never showing a secret.
func (c Config) Check() error {
	var errs []error
	for _, s := range c.settings() {
		if s.check == nil {
			continue
		}
		err := s.check()
		if err == nil {
			continue
		}
		parts := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			parts = j.Unwrap()
		}
		for _, e := range parts {
			env := s.Env
			var se *settingError
			if errors.As(e, &se) {
				env, e = se.env, se.err
			}
			errs = append(errs, fmt.Errorf("%s: %w", env, e))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Settings are the declarations, in the order of the docs.
func Settings() []Setting {
	c := Defaults()
	return c.settings()
}
