package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// What the admin commands print: tables, or JSON with --json.

func (c *keysCmd) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its white space on purpose; indent it stably.
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, out.String())
	return err
}

func (c *keysCmd) table(keys []*keyservicev1.Key) {
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tOWNER\tHINT\tSCOPES\tENABLED\tCREATED\tEXPIRES\tREVOKED")
	ts := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "-"
		}
		return t.AsTime().UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		scopes := strings.Join(k.GetScopes(), ",")
		if scopes == "" {
			scopes = "-"
		}
		enabled := "yes"
		if !k.GetEnabled() {
			enabled = "no"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetName(), k.GetOwner(), k.GetHint(), scopes, enabled,
			ts(k.GetCreatedAt()), ts(k.GetExpiresAt()), ts(k.GetRevokedAt()))
	}
	w.Flush()
}

func (c *keysCmd) auditTable(events []*keyservicev1.AuditEvent) {
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tACTOR\tACTION\tKEY\tCHANGES\tREQUEST")
	for _, e := range events {
		var ch []string
		for _, c := range e.GetChanges() {
			ch = append(ch, c.GetField())
		}
		changes := strings.Join(ch, ",")
		if changes == "" {
			changes = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.GetTime().AsTime().UTC().Format(time.RFC3339), e.GetActor(), e.GetAction(),
			e.GetKeyId(), changes, e.GetRequestId())
	}
	w.Flush()
}
