package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/store"
)

// maxImportLine bounds one line of an import file.
const maxImportLine = 1 << 20

// importKeys runs `keyservice import [--skip-bad] FILE|-`: existing keys,
// one JSON object a line (the API's field names plus key_hash, the hex
// SHA-256 of the plaintext, and optionally revoked_at and hint), stored by
// COPY. A file with bad lines imports nothing unless --skip-bad.
func importKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Defaults()
	fs := flag.NewFlagSet("keyservice import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skipBad := fs.Bool("skip-bad", false, "import the good lines of a file that has bad ones (default: import nothing)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: keyservice import [--skip-bad] FILE   (FILE - reads standard input)")
		fs.PrintDefaults()
	}
	if err := cfg.Parse(fs, args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if fs.Parsed() {
			fmt.Fprintln(stderr, "keyservice import:", err)
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "keyservice import: name one file (or - for standard input)")
		return errUsage
	}
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(stderr, "keyservice import: DATABASE_URL is required")
		return errUsage
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	start := time.Now()
	ks, bad, err := readImport(in)
	if err != nil {
		return err
	}
	for _, b := range bad {
		fmt.Fprintln(stderr, b)
	}
	if len(bad) > 0 && !*skipBad {
		return fmt.Errorf("%d bad lines: nothing imported (fix them, or pass --skip-bad to import the %d good ones)", len(bad), len(ks))
	}
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: cfg.DatabaseURL, MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := store.New(pool, cfg.DBAcquireTimeout).ImportKeys(ctx, ks)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d keys; %d already present or repeated, skipped; %d bad lines skipped (%s)\n",
		res.Imported, res.Duplicates, len(bad), time.Since(start).Round(time.Millisecond))
	return nil
}

// readImport parses every line; bad lines are reported with their number
// and reason, never their content (it may hold a hash worth keeping quiet).
func readImport(in io.Reader) ([]store.ImportedKey, []string, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	var (
		ks  []store.ImportedKey
		bad []string
	)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, err := parseImportLine([]byte(line))
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", n, err))
			continue
		}
		ks = append(ks, k)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the file: %w", err)
	}
	return ks, bad, nil
}

func parseImportLine(line []byte) (store.ImportedKey, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return store.ImportedKey{}, errors.New("not a JSON object")
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
	if err := takeString(fields, "hint", &hint); err != nil || len(hint) > 40 || strings.IndexFunc(hint, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return k, errors.New("hint: must be at most 40 printable characters")
	}
	if hint != "" && keys.HashOf(hint) == k.Hash {
		return k, errors.New("hint: is the key itself; give a short part of it, such as its last four characters")
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
	if hint == "" {
		hint = "imported"
	}
	nk.Hash, nk.Hint = k.Hash, hint
	k.NewKey = nk
	return k, nil
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
