package validate_test

import (
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// The store implements what the validation path asks of it. These checks
// live in a test so that validate itself never imports the store (and,
// through it, the database driver).
var (
	_ validate.Store    = (*store.Store)(nil)
	_ validate.Feed     = (*store.Store)(nil)
	_ validate.KeyStore = (*store.Store)(nil)
)
