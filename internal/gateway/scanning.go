package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/middleware"
)

// GitHub's secret scanning partner programme posts tokens found in public
// repositories to the issuer, signed with one of GitHub's keys. This is
// that endpoint: POST /v1/secret-scanning/reports.

// LeakReport is one reported token, as GitHub sends it.
type LeakReport struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// LeakHandler acts on reports; true for each token that is one of our
// keys (a true positive).
type LeakHandler func(ctx context.Context, reports []LeakReport) ([]bool, error)

// ScanningKeys are GitHub's public keys that sign reports, by identifier.
type ScanningKeys map[string]*ecdsa.PublicKey

// LoadScanningKeys reads GitHub's public-keys JSON
// ({"public_keys":[{"key_identifier":…,"key":"-----BEGIN PUBLIC KEY-----…"}]}).
func LoadScanningKeys(path string) (ScanningKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		PublicKeys []struct {
			KeyIdentifier string `json:"key_identifier"`
			Key           string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: not GitHub's public-keys JSON: %w", path, err)
	}
	out := ScanningKeys{}
	for _, k := range doc.PublicKeys {
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil || k.KeyIdentifier == "" {
			return nil, fmt.Errorf("%s: key %q is not a PEM public key with an identifier", path, k.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", path, k.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s: key %q is not an ECDSA P-256 key", path, k.KeyIdentifier)
		}
		out[k.KeyIdentifier] = ec
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no public keys", path)
	}
	return out, nil
}

// maxReports bounds the tokens of one report, and MaxReportBytes its body
// (GitHub sends a few kilobytes).
const (
	maxReports     = 1000
	MaxReportBytes = 1 << 20
)

// SecretScanning serves GitHub's reports: the signature
// (GITHUB-PUBLIC-KEY-SIGNATURE: base64 DER ECDSA P-256 over the SHA-256 of
// the raw body, by the key named in GITHUB-PUBLIC-KEY-IDENTIFIER) is checked
// before anything else; a missing or bad one is 401 and changes nothing.
// The answer labels each token true_positive or false_positive.
func SecretScanning(handle LeakHandler, ks ScanningKeys, maxBody int64, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	reports := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_leak_reports_total",
		Help: "Tokens reported by secret scanning, by label (true_positive: one of our keys; false_positive), and reports refused for their signature (label bad_signature).",
	}, []string{"label"})
	reg.MustRegister(reports)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// Not an API method, so outside the chain: the request id is
		// given here, for the log and the audit trail of what it revokes.
		ctx, rid := middleware.WithRequestID(r.Context(), r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", rid)
		refuse := func(err error) {
			reports.WithLabelValues("bad_signature").Inc()
			log.Info("secret scanning report refused", "reason", err.Error(), "peer", r.RemoteAddr)
			http.Error(w, "signature not accepted", http.StatusUnauthorized)
		}
		// Headers first: no body is read for a request that cannot be signed.
		pub, err := signer(ks, r.Header)
		if err != nil {
			refuse(err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := verifySignature(pub, r.Header, body); err != nil {
			refuse(err)
			return
		}
		var in []LeakReport
		if err := json.Unmarshal(body, &in); err != nil || len(in) > maxReports {
			http.Error(w, fmt.Sprintf("the body must be a JSON array of at most %d {token, type, url, source}", maxReports), http.StatusBadRequest)
			return
		}
		found, err := handle(ctx, in)
		if err != nil {
			log.Warn("secret scanning report could not be handled", "error", err, "request_id", rid)
			http.Error(w, "could not handle the report, retry later", http.StatusServiceUnavailable)
			return
		}
		type verdict struct {
			TokenRaw  string `json:"token_raw"`
			TokenType string `json:"token_type"`
			Label     string `json:"label"`
		}
		out := make([]verdict, len(in))
		tp := 0
		for i, rep := range in {
			out[i] = verdict{TokenRaw: rep.Token, TokenType: rep.Type, Label: "false_positive"}
			if found[i] {
				out[i].Label = "true_positive"
				tp++
			}
		}
		reports.WithLabelValues("true_positive").Add(float64(tp))
		reports.WithLabelValues("false_positive").Add(float64(len(in) - tp))
		log.Info("secret scanning report handled", "tokens", len(in), "true_positives", tp, "request_id", rid)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

var errNoSignature = errors.New("missing GITHUB-PUBLIC-KEY-IDENTIFIER or GITHUB-PUBLIC-KEY-SIGNATURE")

// signer is the key the request says it is signed with.
func signer(ks ScanningKeys, h http.Header) (*ecdsa.PublicKey, error) {
	id, sig := h.Get("Github-Public-Key-Identifier"), h.Get("Github-Public-Key-Signature")
	if id == "" || sig == "" {
		return nil, errNoSignature
	}
	pub := ks[id]
	if pub == nil {
		return nil, errors.New("unknown key identifier")
	}
	return pub, nil
}

func verifySignature(pub *ecdsa.PublicKey, h http.Header, body []byte) error {
	sig, err := base64.StdEncoding.DecodeString(h.Get("Github-Public-Key-Signature"))
	if err != nil {
		return errors.New("the signature is not base64")
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errors.New("the signature does not match")
	}
	return nil
}
