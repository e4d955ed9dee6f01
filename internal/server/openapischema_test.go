package server_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// openAPI is the part of an OpenAPI v2 document that the live-answers test
// reads, and checks answers against (checkSchema).
type openAPI struct {
	Paths       map[string]map[string]*apiOperation `json:"paths"`
	Definitions map[string]*apiSchema               `json:"definitions"`
}

type apiOperation struct {
	OperationID string                  `json:"operationId"`
	Parameters  []apiParameter          `json:"parameters"`
	Responses   map[string]*apiResponse `json:"responses"`
}

type apiParameter struct {
	Name     string     `json:"name"`
	In       string     `json:"in"`
	Required bool       `json:"required"`
	Schema   *apiSchema `json:"schema"`
}

type apiResponse struct {
	Schema *apiSchema `json:"schema"`
}

// apiSchema is the subset of JSON Schema the generated file uses. A schema
// with neither type, $ref, allOf nor properties (google.protobuf.Value) takes
// any JSON value; every other schema refuses null unless x-nullable.
type apiSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Format               string                `json:"format"`
	Enum                 []string              `json:"enum"`
	Properties           map[string]*apiSchema `json:"properties"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
	Items                *apiSchema            `json:"items"`
	AllOf                []*apiSchema          `json:"allOf"`
	Required             []string              `json:"required"`
	Nullable             bool                  `json:"x-nullable"`
}

// operation finds the operation that serves method and path (a request
// path, without its query), and the template it matched.
func (d *openAPI) operation(method, path string) (*apiOperation, string) {
	for tmpl, ops := range d.Paths {
		// A path parameter is one segment, up to a custom verb (":revoke").
		pattern := "^" + regexp.MustCompile(`\\\{[^}]*\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/:]+`) + "$"
		if regexp.MustCompile(pattern).MatchString(path) {
			if op := ops[strings.ToLower(method)]; op != nil {
				return op, tmpl
			}
		}
	}
	return nil, ""
}

// checkSchema returns every way v (decoded JSON) breaks s, at where (a
// JSON path). Fields an object's schema does not list are errors unless
// it allows additional properties.
func (d *openAPI) checkSchema(v any, s *apiSchema, where string) []string {
	if s == nil {
		return []string{where + ": no schema"}
	}
	if s.Ref != "" {
		def, ok := d.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
		if !ok {
			return []string{where + ": unresolved " + s.Ref}
		}
		if s.Nullable && v == nil {
			return nil
		}
		return d.checkSchema(v, def, where)
	}
	if len(s.AllOf) > 0 {
		var errs []string
		for _, sub := range s.AllOf {
			errs = append(errs, d.checkSchema(v, sub, where)...)
		}
		return errs
	}
	typ := s.Type
	if typ == "" && s.Properties != nil {
		typ = "object"
	}
	if typ == "" {
		return nil // any JSON value, null included
	}
	if v == nil {
		if s.Nullable {
			return nil
		}
		return []string{fmt.Sprintf("%s: null where the spec says %s", where, typ)}
	}
	bad := func(format string, args ...any) []string {
		return []string{where + ": " + fmt.Sprintf(format, args...)}
	}
	switch typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("%T where the spec says an object", v)
		}
		return d.checkObject(obj, s, where)
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return bad("%T where the spec says an array", v)
		}
		var errs []string
		for i, item := range arr {
			errs = append(errs, d.checkSchema(item, s.Items, fmt.Sprintf("%s[%d]", where, i))...)
		}
		return errs
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("%T %v where the spec says a string", v, v)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return bad("%q is not one of %v", str, s.Enum)
		}
		switch s.Format {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return bad("%q is not a date-time", str)
			}
		case "int64", "uint64":
			if _, err := strconv.ParseInt(str, 10, 64); err != nil {
				return bad("%q is not an %s", str, s.Format)
			}
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) || s.Format == "int32" && (n < math.MinInt32 || n > math.MaxInt32) {
			return bad("%v is not an integer (%s)", v, s.Format)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return bad("%T where the spec says a number", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("%T where the spec says a boolean", v)
		}
	default:
		return bad("type %q is not one this checker knows", typ)
	}
	return nil
}

func (d *openAPI) checkObject(obj map[string]any, s *apiSchema, where string) []string {
	var errs []string
	var extra *apiSchema
	anyExtra := false
	if len(s.AdditionalProperties) > 0 {
		if err := json.Unmarshal(s.AdditionalProperties, &anyExtra); err != nil {
			extra = &apiSchema{}
			if err := json.Unmarshal(s.AdditionalProperties, extra); err != nil {
				return []string{where + ": additionalProperties: " + err.Error()}
			}
		}
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch prop, listed := s.Properties[k]; {
		case listed:
			errs = append(errs, d.checkSchema(obj[k], prop, where+"."+k)...)
		case extra != nil:
			errs = append(errs, d.checkSchema(obj[k], extra, where+"."+k)...)
		case !anyExtra:
			errs = append(errs, fmt.Sprintf("%s.%s: a field the spec does not declare", where, k))
		}
	}
	for _, k := range s.Required {
		if _, ok := obj[k]; !ok {
			errs = append(errs, fmt.Sprintf("%s.%s: required, missing", where, k))
		}
	}
	return errs
}
