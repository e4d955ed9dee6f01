package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
)

// What the commands print: tables, or JSON with --json (a proto message
// in the API's field names, every field present).

func printJSON(w io.Writer, v any) error {
	var b []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		b, err = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	// protojson varies its white space on purpose; indent it stably.
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, out.String())
	return err
}

// keyColumns are the key table's columns, in order.
var keyColumns = []string{"ID", "NAME", "OWNER", "HINT", "SCOPES", "ENABLED", "CREATED", "EXPIRES", "REVOKED",
	"RATE_LIMIT", "ALLOWED_CIDRS", "ROTATED_FROM", "ROTATED_TO", "KEYSPACE"}

func keyTable(w io.Writer, keys []*keyservicev1.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(keyColumns, "\t"))
	for _, k := range keys {
		enabled := "yes"
		if !k.GetEnabled() {
			enabled = "no"
		}
		fmt.Fprintln(tw, strings.Join([]string{k.GetId(), k.GetName(), k.GetOwner(), k.GetHint(), list(k.GetScopes(), "-"), enabled,
			ts(k.GetCreatedAt()), ts(k.GetExpiresAt()), ts(k.GetRevokedAt()),
			rateLimit(k.GetRateLimit()), list(k.GetAllowedCidrs(), "any"), orDash(k.GetRotatedFrom()), orDash(k.GetRotatedTo()),
			orDash(k.GetKeyspaceId())}, "\t"))
	}
	tw.Flush()
}

// rateLimit shows a key's own limit as --rate-limit takes it, with its
// burst when that is not the limit; "default" for the configured one.
func rateLimit(rl *keyservicev1.RateLimit) string {
	if rl == nil {
		return "default"
	}
	s := apikey.FormatRate(rl.GetLimit(), rl.GetPeriod().AsDuration())
	if b := rl.GetBurst(); b != 0 && b != rl.GetLimit() {
		s += fmt.Sprintf(" burst %d", b)
	}
	return s
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func list(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditTable prints events; RESOURCE and ID name what changed (a key, a
// keyspace or a credential: only a key's event has a key_id).
func auditTable(w io.Writer, events []*keyservicev1.AuditEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tRESOURCE\tID\tCHANGES\tREQUEST")
	for _, e := range events {
		var ch []string
		for _, c := range e.GetChanges() {
			ch = append(ch, c.GetField())
		}
		typ, id := e.GetResourceType(), e.GetResourceId()
		if typ == "" && e.GetKeyId() != "" { // a server from before keyspaces
			typ, id = "key", e.GetKeyId()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetTime().AsTime().UTC().Format(time.RFC3339), e.GetActor(), e.GetAction(),
			orDash(typ), orDash(id), list(ch, "-"), e.GetRequestId())
	}
	tw.Flush()
}

// validateAnswer prints a validation: its code, the key's budget, the key.
func validateAnswer(w io.Writer, r *keyservicev1.ValidateResponse) {
	fmt.Fprintf(w, "%s\n", strings.TrimPrefix(r.GetCode().String(), "CODE_"))
	if rl := r.GetRateLimit(); rl != nil {
		fmt.Fprintf(w, "budget: %d of %d left, full again in %s\n", rl.GetRemaining(), rl.GetLimit(), rl.GetReset_().AsDuration())
	}
	if k := r.GetKey(); k != nil {
		fmt.Fprintln(w)
		keyTable(w, []*keyservicev1.Key{k})
	}
}
