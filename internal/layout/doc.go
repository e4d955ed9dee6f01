// Package layout has no code: its tests hold the shape of the module to
// what docs/architecture.md says of it. The packages the core is built on
// do not depend on the database driver (go list -deps), the arrows of the
// doc's package diagram are the imports and reach what the imports reach,
// and every file the doc names exists. They run in a second with no
// database: go test ./internal/layout.
package layout
