package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The usage commands: the usage history as a chart in the terminal, and
// the CSV export for billing.

type usageFlags struct {
	key, owner, keyspace, from, to, granularity string
}

func (u *usageFlags) register(f *pflag.FlagSet, dflt string) {
	f.StringVar(&u.keyspace, "keyspace", "", "only keys of this keyspace (name or id)")
	f.StringVar(&u.from, "from", "", "from this time: RFC 3339 (2026-12-01T00:00:00Z) or a date (2026-12-01, UTC); default: 24 hours before --to")
	f.StringVar(&u.to, "to", "", "up to this time (exclusive), as --from; default: now")
	f.StringVar(&u.granularity, "granularity", dflt, "bucket width: minute, hour or day")
}

// parseWhen reads --from/--to: RFC 3339 or a date (UTC midnight).
func parseWhen(flag, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return timestamppb.New(t), nil
		}
	}
	return nil, fmt.Errorf("--%s: want RFC 3339 such as 2026-12-01T00:00:00Z or a date such as 2026-12-01, got %q", flag, s)
}

var granularityFlags = map[string]keyservicev1.Granularity{
	"minute": keyservicev1.Granularity_GRANULARITY_MINUTE,
	"hour":   keyservicev1.Granularity_GRANULARITY_HOUR,
	"day":    keyservicev1.Granularity_GRANULARITY_DAY,
}

func (u *usageFlags) request() (*keyservicev1.GetUsageRequest, error) {
	g, ok := granularityFlags[u.granularity]
	if !ok {
		return nil, usageError{fmt.Errorf("--granularity: want minute, hour or day, got %q", u.granularity)}
	}
	from, err := parseWhen("from", u.from)
	if err != nil {
		return nil, usageError{err}
	}
	to, err := parseWhen("to", u.to)
	if err != nil {
		return nil, usageError{err}
	}
	return &keyservicev1.GetUsageRequest{KeyId: u.key, Owner: u.owner, Keyspace: u.keyspace, From: from, To: to, Granularity: g}, nil
}

func usageCmd() *cobra.Command {
	a := &admin{}
	var u usageFlags
	c := &cobra.Command{
		Use:   "usage [flags]",
		Short: "Show the usage history of a key, an owner or a keyspace as a chart; export it for billing",
		Long: "The usage history (GetUsage, permission usage.read): Validate answers by outcome and credits\n" +
			"spent, per minute, hour or day, drawn as a bar chart (the numbers alongside), with totals.\n\n" + tenancyLong,
		Example: "  keyservice usage --key $KEY_ID --granularity hour\n  keyservice usage --owner acme --from 2026-12-01 --granularity day",
		GroupID: "admin",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := u.request()
			if err != nil {
				return err
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.GetUsage(ctx, req)
				if err != nil {
					return rpcErr(err)
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				for _, s := range resp.GetSeries() {
					usageChart(cmd.OutOrStdout(), s, req.GetGranularity())
				}
				if len(resp.GetSeries()) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no usage in this range")
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&u.key, "key", "", "the key's id")
	c.Flags().StringVar(&u.owner, "owner", "", "the owner (with --keyspace, or in the default keyspace)")
	u.register(c.Flags(), "hour")
	c.AddCommand(usageExportCmd(a))
	a.register(c)
	return c
}

// codeName is an outcome's short name (VALID, USAGE_EXCEEDED, ...).
func codeName(c keyservicev1.Code) string { return strings.TrimPrefix(c.String(), "CODE_") }

// usageChart draws one series: a bar per bucket, '#' for VALID answers
// and '-' for refusals, scaled to the largest bucket, then the numbers.
func usageChart(w io.Writer, s *keyservicev1.UsageSeries, g keyservicev1.Granularity) {
	layout := "2006-01-02 15:04"
	if g == keyservicev1.Granularity_GRANULARITY_DAY {
		layout = "2006-01-02"
	}
	if s.GetKeyId() != "" || s.GetOwner() != "" {
		fmt.Fprintf(w, "key %s  owner %s\n", s.GetKeyId(), s.GetOwner())
	}
	const width = 40
	var most int64
	for _, p := range s.GetPoints() {
		var n int64
		for _, c := range p.GetCounts() {
			n += c.GetCalls()
		}
		most = max(most, n)
	}
	for _, p := range s.GetPoints() {
		var valid, refused int64
		var parts []string
		for _, c := range p.GetCounts() {
			if c.GetCode() == keyservicev1.Code_CODE_VALID {
				valid += c.GetCalls()
			} else {
				refused += c.GetCalls()
			}
			parts = append(parts, codeName(c.GetCode())+" "+strconv.FormatInt(c.GetCalls(), 10))
		}
		bar := ""
		if most > 0 {
			v := int(valid * width / most)
			r := int((valid + refused) * width / most)
			bar = strings.Repeat("#", v) + strings.Repeat("-", r-v)
		}
		extra := ""
		if p.GetCredits() > 0 {
			extra += "  credits " + strconv.FormatInt(p.GetCredits(), 10)
		}
		if p.GetReports() > 0 {
			extra += fmt.Sprintf("  reported %d (%d credits)", p.GetReports(), p.GetReportedCredits())
		}
		fmt.Fprintf(w, "%s  %-*s  %s%s\n", p.GetStart().AsTime().UTC().Format(layout), width, bar, strings.Join(parts, "  "), extra)
	}
	t := s.GetTotal()
	var parts []string
	for _, c := range t.GetCounts() {
		parts = append(parts, codeName(c.GetCode())+" "+strconv.FormatInt(c.GetCalls(), 10))
	}
	fmt.Fprintf(w, "total: %s  credits %d  reported %d (%d credits)\n('#' VALID, '-' refused)\n", strings.Join(parts, "  "), t.GetCredits(), t.GetReports(), t.GetReportedCredits())
}

func usageExportCmd(a *admin) *cobra.Command {
	var u usageFlags
	var by string
	c := &cobra.Command{
		Use:     "export [flags]",
		Short:   "Write the usage history as CSV for billing: one row per owner (or key) per bucket",
		Example: "  keyservice usage export --from 2026-11-01 --to 2026-12-01 --by owner > november.csv",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := u.request()
			if err != nil {
				return err
			}
			switch by {
			case "owner":
				req.GroupBy = keyservicev1.UsageGroup_USAGE_GROUP_OWNER
			case "key":
				req.GroupBy = keyservicev1.UsageGroup_USAGE_GROUP_KEY
			default:
				return usageError{fmt.Errorf("--by: want owner or key, got %q", by)}
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				return exportCSV(ctx, cmd.OutOrStdout(), client, req)
			})
		},
	}
	c.Flags().StringVar(&by, "by", "owner", "one series per owner or per key")
	u.register(c.Flags(), "day")
	return c
}

// exportCSV writes every page of req's series as CSV rows.
func exportCSV(ctx context.Context, w io.Writer, client keyservicev1.KeyServiceClient, req *keyservicev1.GetUsageRequest) error {
	var codes []keyservicev1.Code
	for n := int32(1); ; n++ {
		if _, ok := keyservicev1.Code_name[n]; !ok {
			break
		}
		codes = append(codes, keyservicev1.Code(n))
	}
	cw := csv.NewWriter(w)
	head := []string{"start", "keyspace_id", "owner", "key_id"}
	for _, c := range codes {
		head = append(head, strings.ToLower(codeName(c)))
	}
	_ = cw.Write(append(head, "credits", "reports", "reported_credits"))
	req.PageSize = 1000
	for {
		resp, err := client.GetUsage(ctx, req)
		if err != nil {
			return rpcErr(err)
		}
		for _, s := range resp.GetSeries() {
			for _, p := range s.GetPoints() {
				calls := map[keyservicev1.Code]int64{}
				for _, c := range p.GetCounts() {
					calls[c.GetCode()] = c.GetCalls()
				}
				row := []string{p.GetStart().AsTime().UTC().Format(time.RFC3339), s.GetKeyspaceId(), csvText(s.GetOwner()), s.GetKeyId()}
				for _, c := range codes {
					row = append(row, strconv.FormatInt(calls[c], 10))
				}
				_ = cw.Write(append(row, strconv.FormatInt(p.GetCredits(), 10), strconv.FormatInt(p.GetReports(), 10), strconv.FormatInt(p.GetReportedCredits(), 10)))
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvText keeps an owner (free text) from being read as a formula by a
// spreadsheet opening the export: a leading = + - @ gets a quote.
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@", rune(v[0])) {
		return "'" + v
	}
	return v
}
