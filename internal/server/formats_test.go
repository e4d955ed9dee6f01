package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

const signingSecret = "c2lnbmluZy1zZWNyZXQtZm9yLXRoZS10ZXN0cy0wMTIzNDU2Nzg5" // 38 bytes

func withSigning(def string) option {
	return withConfig(func(c *config.Config) {
		ks, err := keys.ParseSigningKeys("t1:" + signingSecret)
		if err != nil {
			panic(err)
		}
		c.SigningKeys, c.DefaultKeyFormat = ks, def
	})
}

// TestSignedKeysValidateBesideChecksumKeys: both formats are created and
// validated side by side, over gRPC and REST; the default format comes
// from the configuration.
func TestSignedKeysValidateBesideChecksumKeys(t *testing.T) {
	t.Parallel()
	e := start(t, withSigning("signed"))
	ctx := admin(context.Background())
	signed, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "s", Owner: "o"}) // the default: signed
	if err != nil {
		t.Fatal(err)
	}
	checksum, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "c", Owner: "o", Format: keyservicev1.Format_FORMAT_CHECKSUM})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(signed.GetSecret(), "kss_t1_") || !strings.HasPrefix(checksum.GetSecret(), "ks_") {
		t.Fatalf("secrets %q..., %q...", signed.GetSecret()[:7], checksum.GetSecret()[:3])
	}
	if !strings.HasPrefix(signed.GetKey().GetHint(), "kss_...") {
		t.Fatalf("hint %q", signed.GetKey().GetHint())
	}
	for _, secret := range []string{signed.GetSecret(), checksum.GetSecret()} {
		r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret})
		if err != nil || r.GetCode() != keyservicev1.Code_CODE_VALID {
			t.Fatalf("gRPC Validate: %v %v", r.GetCode(), err)
		}
		code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret))
		if code != 200 || body["code"] != "CODE_VALID" {
			t.Fatalf("REST Validate: %d %v", code, body)
		}
	}
	if n := metricValue(t, e, `keyservice_validate_formats_total{format="signed"}`); n != 2 {
		t.Fatalf("signed validations counted %v, want 2", n)
	}
}

// TestForgedSignedKeysCostNoLookupAndNoFilterProbe: a flood of well-shaped
// signed keys with wrong tags, and of keys of an unknown kid, is answered
// MALFORMED from the signature step: no filter probe, no lookup.
func TestForgedSignedKeysCostNoLookupAndNoFilterProbe(t *testing.T) {
	t.Parallel()
	e := start(t, withSigning("checksum"), withConfig(func(c *config.Config) { c.FailedRate, c.FailedBurst = 1e9, 1<<30 }))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "s", Owner: "o", Format: keyservicev1.Format_FORMAT_SIGNED})
	if err != nil {
		t.Fatal(err)
	}
	real := created.GetSecret()
	probes := metricValue(t, e, "keyservice_filter_probes_total")
	lookups := metricSum(t, e, "keyservice_lookups_total")
	const n = 500
	for i := 0; i < n; i++ {
		b := []byte(real)
		at := len("kss_t1_") + i%(len(b)-len("kss_t1_"))
		b[at] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[(strings.IndexByte("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", b[at])+1)%62] // another base62 character: body or tag
		forged := string(b)
		if i%5 == 0 {
			forged = "kss_zz_" + real[len("kss_t1_"):] // a kid no one lists
		}
		r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: forged})
		if err != nil || r.GetCode() != keyservicev1.Code_CODE_MALFORMED {
			t.Fatalf("forgery %d: %v %v", i, r.GetCode(), err)
		}
	}
	if d := metricValue(t, e, "keyservice_filter_probes_total") - probes; d != 0 {
		t.Fatalf("%d forged keys made %v filter probes, want 0", n, d)
	}
	if d := metricSum(t, e, "keyservice_lookups_total") - lookups; d != 0 {
		t.Fatalf("%d forged keys made %v lookups, want 0", n, d)
	}
	if got := metricValue(t, e, `keyservice_validate_answers_total{code="MALFORMED",path="signature"}`); got != n {
		t.Fatalf("answers from the signature step: %v", got)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: real}); r.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("the real key after the flood: %v", r.GetCode())
	}
}

func TestSignedFormatNeedsSigningKeys(t *testing.T) {
	t.Parallel()
	e := start(t)
	_, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "s", Owner: "o", Format: keyservicev1.Format_FORMAT_SIGNED})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "format") {
		t.Fatalf("signed key without signing keys: %v, want INVALID_ARGUMENT naming format", err)
	}
	// Without signing keys, a kss_ key is just a key of no known format.
	r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "kss_t1_" + strings.Repeat("A", 46)})
	if err != nil || r.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("%v %v", r.GetCode(), err)
	}
}

// TestImportedLegacyKeysValidateUntilRefused: a key of a declared legacy
// format, imported by its hash, is VALID through the usual path (no
// checksum to check) and counted by format; marked refuse, the format's
// keys are MALFORMED at once.
func TestImportedLegacyKeysValidateUntilRefused(t *testing.T) {
	t.Parallel()
	u, pool := testdb.New(t)
	legacy := func(refuse bool) option {
		return withConfig(func(c *config.Config) {
			ls, err := keys.ParseLegacyFormats("openai:sk-:^sk-[0-9a-f]{32}$", nil)
			if err != nil {
				panic(err)
			}
			c.LegacyFormats = ls
			if refuse {
				c.LegacyRefuse = []string{"openai"}
			}
		})
	}
	e := startOn(t, u, legacy(false))
	e.waitReady(t)
	const key = "sk-0123456789abcdef0123456789abcdef"
	res, err := store.New(pool, time.Second).ImportKeys(context.Background(), []store.ImportedKey{{NewKey: apikey.NewKey{Hash: keys.HashOf(key), Hint: "sk-...cdef", Name: "old", Owner: "acme"}}})
	if err != nil || res.Imported != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	// The import sends no NOTIFY: the incremental sync finds the key.
	waitFor(t, func() bool {
		r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key})
		return err == nil && r.GetCode() == keyservicev1.Code_CODE_VALID
	})
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "sk-0123456789abcdef0123456789abcdeZ"}); r.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a key that does not match the pattern: %v", r.GetCode())
	}
	if n := metricValue(t, e, `keyservice_validate_formats_total{format="openai"}`); n < 2 {
		t.Fatalf("legacy validations counted %v", n)
	}
	e.stop(t)
	refused := startOn(t, u, legacy(true))
	refused.waitReady(t)
	if r, _ := refused.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key}); r.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a refused legacy format's key: %v, want MALFORMED", r.GetCode())
	}
}
