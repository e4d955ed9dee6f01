package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/store"
)

// maxImportLine bounds one line of an import file.
const maxImportLine = 1 << 20

func importCmd() *cobra.Command {
	var o importOptions
	c := &cobra.Command{
		Use:   "import [--skip-bad] FILE|-",
		Short: "Bring existing keys in by their SHA-256 (JSON Lines; needs DATABASE_URL)",
		Long: `Bring existing keys in by their SHA-256, writing to the database directly
(the service need not run). FILE holds one JSON object a line: the API's
CreateKey fields (name, owner, scopes, metadata, expires_at, rate_limit,
allowed_cidrs) plus key_hash, the hex SHA-256 of the key, and optionally
hint and revoked_at. FILE - reads standard input. A file with bad lines
imports nothing unless --skip-bad; importing a file twice imports its keys
once. The database timeouts are read from KEYSERVICE_DB_CONNECT_TIMEOUT and
KEYSERVICE_DB_ACQUIRE_TIMEOUT, as serve reads them.`,
		Example: `  printf '{"key_hash":"%s","name":"legacy","owner":"acme"}\n' \
    "$(printf '%s' old-system-key-1 | sha256sum | cut -d' ' -f1)" | keyservice import -`,
		GroupID: "server",
		Args:    exactArgs(1, "one file (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return importKeys(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of the service's database (env DATABASE_URL)")
	f.BoolVar(&o.skipBad, "skip-bad", false, "import the good lines of a file that has bad ones (default: import nothing)")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return c
}

type importOptions struct {
	databaseURL, file string
	skipBad, asJSON   bool
}

// importKeys imports o.file: existing keys, stored by COPY.
func importKeys(ctx context.Context, o importOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	// The service's settings from the environment, as serve reads them
	// (the database URL and timeouts are the ones used here).
	cfg := config.Defaults()
	envOnly := flag.NewFlagSet("import", flag.ContinueOnError)
	envOnly.SetOutput(io.Discard)
	if err := cfg.Parse(envOnly, nil, nil); err != nil {
		return usageError{err}
	}
	if o.databaseURL != "" {
		cfg.DatabaseURL = o.databaseURL
	}
	if cfg.DatabaseURL == "" {
		return usageError{errors.New("import: DATABASE_URL is required (the service's database; `make run` prints its cluster's)")}
	}
	in := stdin
	if name := o.file; name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	start := time.Now()
	lines, bad, err := readImport(in)
	if err != nil {
		return err
	}
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: cfg.DatabaseURL, MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool, cfg.DBAcquireTimeout)
	if lines, bad, err = refuseSecretHints(ctx, st, lines, bad); err != nil {
		return err
	}
	slices.SortFunc(bad, func(a, b badLine) int { return a.n - b.n })
	for _, b := range bad {
		fmt.Fprintf(stderr, "line %d: %v\n", b.n, b.err)
	}
	if len(bad) > 0 && !o.skipBad {
		return fmt.Errorf("%d bad lines: nothing imported (fix them, or pass --skip-bad to import the %d good ones)", len(bad), len(lines))
	}
	ks := make([]store.ImportedKey, len(lines))
	for i, l := range lines {
		ks[i] = l.key
		if ks[i].Hint == "" {
			ks[i].Hint = "imported"
		}
	}
	res, err := st.ImportKeys(ctx, ks)
	if err != nil {
		return err
	}
	if o.asJSON {
		return printJSON(stdout, map[string]any{"imported": res.Imported, "duplicates": res.Duplicates, "bad_lines_skipped": len(bad)})
	}
	fmt.Fprintf(stdout, "imported %d keys; %d already present or repeated, skipped; %d bad lines skipped (%s)\n",
		res.Imported, res.Duplicates, len(bad), time.Since(start).Round(time.Millisecond))
	return nil
}

// importLine is a good line of an import file, and its number.
type importLine struct {
	n   int
	key store.ImportedKey
}

// badLine is a bad line's number and what is wrong with it.
type badLine struct {
	n   int
	err error
}

// readImport parses every line; bad lines are reported with their number
// and reason, never their content (it may hold a hash worth keeping quiet).
func readImport(in io.Reader) ([]importLine, []badLine, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	var (
		good []importLine
		bad  []badLine
	)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, err := parseImportLine([]byte(line))
		if err != nil {
			bad = append(bad, badLine{n, err})
			continue
		}
		good = append(good, importLine{n, k})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the file: %w", err)
	}
	return good, bad, nil
}

// refuseSecretHints moves to bad the lines whose hint is the secret of a
// key: of another line's key, or of a key already stored (a hint is shown
// to every admin who lists keys).
func refuseSecretHints(ctx context.Context, st *store.Store, lines []importLine, bad []badLine) ([]importLine, []badLine, error) {
	lineOf := make(map[keys.Hash]int, len(lines))
	var hinted []keys.Hash
	for _, l := range lines {
		lineOf[l.key.Hash] = l.n
		if l.key.Hint != "" {
			hinted = append(hinted, keys.HashOf(l.key.Hint))
		}
	}
	stored, err := st.StoredHashes(ctx, hinted)
	if err != nil {
		return nil, nil, err
	}
	good := lines[:0]
	for _, l := range lines {
		if l.key.Hint != "" {
			h := keys.HashOf(l.key.Hint)
			if n, ok := lineOf[h]; ok {
				bad = append(bad, badLine{l.n, fmt.Errorf("hint: is the full secret of the key on line %d; give a short part of it, such as its last four characters", n)})
				continue
			}
			if stored[h] {
				bad = append(bad, badLine{l.n, errors.New("hint: is the full secret of a key already stored; give a short part of it, such as its last four characters")})
				continue
			}
		}
		good = append(good, l)
	}
	return good, bad, nil
}

func parseImportLine(line []byte) (store.ImportedKey, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return store.ImportedKey{}, errors.New("not a JSON object")
	}
	if name, ok := repeatedField(line); ok {
		// As the API refuses it: which value would count is anyone's guess.
		return store.ImportedKey{}, fmt.Errorf("%q appears twice: give each field once", name)
	}
	var k store.ImportedKey
	var hashHex string
	if err := takeString(fields, "key_hash", &hashHex); err != nil || hashHex == "" {
		return k, errors.New("key_hash: required, the SHA-256 of the key in hex")
	}
	if b, err := hex.DecodeString(strings.ToLower(hashHex)); err != nil || len(b) != len(k.Hash) {
		return k, errors.New("key_hash: must be 64 hex characters (a SHA-256)")
	} else {
		copy(k.Hash[:], b)
	}
	var hint, revoked string
	if err := takeString(fields, "hint", &hint); err != nil {
		return k, errors.New("hint: must be a string")
	}
	if hint != "" && keys.HashOf(hint) == k.Hash {
		return k, errors.New("hint: is the key itself; give a short part of it, such as its last four characters")
	}
	if err := service.CheckHint(hint); err != nil {
		return k, err
	}
	if err := takeString(fields, "revoked_at", &revoked); err != nil {
		return k, errors.New("revoked_at: must be an RFC 3339 time")
	}
	if revoked != "" {
		t, err := time.Parse(time.RFC3339Nano, revoked)
		if err != nil {
			return k, errors.New("revoked_at: must be an RFC 3339 time")
		}
		if t.After(time.Now()) {
			return k, errors.New("revoked_at: must not be in the future")
		}
		k.RevokedAt = &t
	}
	rest, _ := json.Marshal(fields)
	var req keyservicev1.CreateKeyRequest
	if err := protojson.Unmarshal(rest, &req); err != nil {
		return k, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "proto: "))
	}
	if req.GetFormat() != keyservicev1.Format_FORMAT_UNSPECIFIED {
		return k, errors.New("format: not for imported keys")
	}
	nk, err := service.CheckImported(&req)
	if err != nil {
		return k, err
	}
	nk.Hash, nk.Hint = k.Hash, hint // "" until the import names it "imported"
	k.NewKey = nk
	return k, nil
}

// repeatedField names a field given twice at the top of the JSON object
// line (protojson refuses repeats inside, as REST does everywhere).
func repeatedField(line []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := t.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// takeString moves fields[name] (a JSON string, or absent) into dst.
func takeString(fields map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	delete(fields, name)
	return json.Unmarshal(raw, dst)
}
