package cli

import (
	"context"

	"github.com/spf13/cobra"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The audit commands: who changed which key, keyspace or credential.

func auditCmd() *cobra.Command {
	a := &admin{}
	c := group("audit", "Who changed which key, keyspace or credential, newest first",
		"The audit trail of a running service: who changed which key, keyspace or credential, newest first.\n\n"+adminLong, "admin",
		auditListCmd(a))
	a.register(c)
	return c
}

func auditListCmd(a *admin) *cobra.Command {
	var keyID, actor string
	var p pages
	c := &cobra.Command{
		Use:     "list [--key ID] [--actor NAME] [flags]",
		Short:   "List audit events, newest first",
		Example: "  keyservice audit list --key $ID\n  keyservice audit list --actor admin-1 --all --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				events, next, err := collect(&p, func(size int32, token string) ([]*keyservicev1.AuditEvent, string, error) {
					resp, err := client.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: keyID, Actor: actor, PageSize: size, PageToken: token})
					return resp.GetEvents(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), &keyservicev1.ListAuditEventsResponse{Events: events, NextPageToken: next})
				}
				auditTable(cmd.OutOrStdout(), events)
				p.more(cmd.OutOrStdout(), next)
				return nil
			})
		},
	}
	c.Flags().StringVar(&keyID, "key", "", "only events of this key id")
	c.Flags().StringVar(&actor, "actor", "", "only events by this admin (token name)")
	p.register(c.Flags(), "events")
	return c
}
