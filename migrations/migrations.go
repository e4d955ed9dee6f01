// Package migrations embeds the numbered SQL migrations (goose format), so the
// binary can migrate a database with no files beside it.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
