// Package api holds keyservice's protobuf definitions; the generated Go code
// is in api/gen/keyservice/v1 (import path
// github.com/keyservice/keyservice/api/gen/keyservice/v1).
package api

import _ "embed"

// OpenAPI is the OpenAPI v2 description of the REST API, generated from the
// protos by protoc-gen-openapiv2.
//
//go:embed gen/openapiv2/keyservice.swagger.json
var OpenAPI []byte
