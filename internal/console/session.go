package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// A session is the signed-in credential's token, sealed (AES-256-GCM) in
// an HttpOnly, SameSite=Strict cookie with its expiry: no server state,
// so every replica reads it, and every page calls the service with the
// token, so the service checks the credential (revoked: the session ends
// on the next request, on any replica) and its permissions on every call.
type sealer struct {
	aead cipher.AEAD
	csrf []byte // the key CSRF tokens are derived with
}

func newSealer(secret string) (*sealer, error) {
	if secret == "" {
		return nil, errors.New("console: no secret to seal sessions with (KEYSERVICE_SEAL_KEY or an admin token)")
	}
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "keyservice console session v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c, err := hkdf.Key(sha256.New, []byte(secret), nil, "keyservice console csrf v1", 32)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, csrf: c}, nil
}

var errBadSession = errors.New("console: session not valid")

// Purposes of sealed values: one kind can never be opened as another.
const (
	purposeSession = "session"
	purposeSecret  = "secret" // a new secret on its way to the page that shows it once
)

// seal returns the cookie value for token, valid until exp.
func (s *sealer) seal(token string, exp time.Time) string {
	return s.sealFor(purposeSession, token, exp)
}

// open returns the token of a session cookie value sealed by seal and not
// expired.
func (s *sealer) open(v string, now time.Time) (string, error) {
	return s.openFor(purposeSession, v, now)
}

// sealFor seals payload for purpose until exp.
func (s *sealer) sealFor(purpose, token string, exp time.Time) string {
	plain := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	plain = append(plain, token...)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(purpose)))
}

// openFor returns the payload of a value sealed by sealFor for purpose and
// not expired.
func (s *sealer) openFor(purpose, v string, now time.Time) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errBadSession
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(purpose))
	if err != nil || len(plain) < 8 {
		return "", errBadSession
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0); !now.Before(exp) {
		return "", errBadSession
	}
	return string(plain[8:]), nil
}

// csrfToken is the token a form of the session cookie v must carry.
func (s *sealer) csrfToken(v string) string {
	m := hmac.New(sha256.New, s.csrf)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK reports, in constant time, whether got is v's CSRF token.
func (s *sealer) csrfOK(v, got string) bool {
	return hmac.Equal([]byte(s.csrfToken(v)), []byte(got))
}
