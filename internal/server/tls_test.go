package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

type pki struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPool *x509.CertPool
	dir    string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{ca: ca, caKey: key, caPool: x509.NewCertPool(), dir: t.TempDir()}
	p.caPool.AddCert(ca)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a certificate for cn signed by the CA.
func (p *pki) issue(t *testing.T, cn string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath := p.write(t, cn+".pem", "CERTIFICATE", der)
	keyPath := p.write(t, cn+"-key.pem", "EC PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	return c, certPath, keyPath
}

func TestClientCertificatesIdentifyCallers(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	_, certFile, keyFile := p.issue(t, "keyservice", true)
	e := start(t, withConfig(func(c *config.Config) {
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, filepath.Join(p.dir, "ca.pem")
		c.CallerRate, c.CallerBurst = 0.01, 2
	}))
	billing, _, _ := p.issue(t, "billing", false)
	search, _, _ := p.issue(t, "search", false)
	dial := func(certs ...tls.Certificate) keyservicev1.KeyServiceClient {
		conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: p.caPool, Certificates: certs})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return keyservicev1.NewKeyServiceClient(conn)
	}
	req := &keyservicev1.ValidateRequest{Key: "garbage"}
	ctx := context.Background()
	if _, err := dial().Validate(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("TLS without a client certificate: %v, want Unauthenticated", err)
	}
	b := dial(billing)
	for i := 0; i < 2; i++ {
		if _, err := b.Validate(ctx, req); err != nil {
			t.Fatalf("billing call %d: %v", i, err)
		}
	}
	if _, err := b.Validate(ctx, req); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("billing over budget: %v", err)
	}
	// A different certificate is a different caller.
	if _, err := dial(search).Validate(ctx, req); err != nil {
		t.Fatalf("search: %v", err)
	}
	// REST over HTTPS: the certificate names the caller there too.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{billing}}}}
	resp, err := client.Post("https://"+e.srv.HTTPAddr().String()+"/v1/keys:validate", "application/json", strings.NewReader(`{"key":"garbage"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("REST with billing's certificate: %d, want 429 (its budget is spent)", resp.StatusCode)
	}
}
