package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

func newExploreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explore",
		Short: "Serve the asset usage explorer: a web page of who uses which assets, where, and how that changed",
		Long: `Serve the asset usage explorer on explore.listen (127.0.0.1:8090 by default).
It reads the indices the opensearch or the elasticsearch sink writes
(explore.index, on explore.backend) through this server only; the browser
never talks to the cluster. Who may sign in, and which
customer's data each one sees, comes from explore.users_file; make entries
with 'leasehold explore token'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			e := c.Explore
			if e.UsersFile == "" {
				return usageError{fmt.Errorf("explore.users_file: required; list who may sign in (see 'leasehold explore token')")}
			}
			users, err := explorer.LoadUsers(e.UsersFile)
			if err != nil {
				return usageError{fmt.Errorf("explore.users_file: %w", err)}
			}
			cfg := explorer.Config{
				OpenSearch: e.OpenSearchURL, Username: e.OpenSearchUsername, Password: string(e.OpenSearchPassword), Index: e.Index,
				AppDomains: e.AppDomains, HighlightMinChange: e.HighlightMinChange, HighlightMinCount: int64(e.HighlightMinCount),
				Rollups: e.Rollups, RollupPrefix: e.RollupPrefix, RollupSettle: e.RollupSettle, RollupCheck: e.RollupCheck,
			}
			if e.Backend == "elasticsearch" {
				if cfg.Backend, err = explorer.NewElasticsearch(explorer.ElasticsearchOptions{CloudID: e.ElasticsearchCloudID, Conn: searchbulk.Conn{
					URL: e.ElasticsearchURL, Username: e.ElasticsearchUsername, Password: e.ElasticsearchPassword, APIKey: e.ElasticsearchAPIKey,
					CAFile: e.ElasticsearchCAFile, InsecureSkipVerify: e.ElasticsearchInsecureSkipVerify,
				}}); err != nil {
					return usageError{err}
				}
			}
			if e.LeaseTable != "" {
				awsCfg, err := awsconf.Load(cmd.Context())
				if err != nil {
					return usageError{err}
				}
				store, err := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), e.LeaseTable)
				if err != nil {
					return usageError{err}
				}
				cfg.Lag = func(ctx context.Context) (time.Duration, time.Time, error) { return workerLag(ctx, store) }
			}
			srv, err := explorer.New(cfg, users, log)
			if err != nil {
				return usageError{err}
			}
			l, err := explorer.Listen(e.Listen)
			if err != nil {
				return usageError{fmt.Errorf("explore.listen: %w", err)}
			}
			log.Info("explorer listening", zap.String("url", "http://"+l.Addr().String()+"/"), zap.String("backend", e.Backend), zap.String("index", e.Index))
			return srv.Serve(cmd.Context(), l)
		},
	}
	cmd.AddCommand(newExploreTokenCmd())
	return cmd
}

// workerLag is the largest lag behind the stream tip at the last
// checkpoint of any shard still being read, and the newest checkpoint time.
func workerLag(ctx context.Context, store *lease.DynamoStore) (time.Duration, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	var lag int64
	var at time.Time
	for _, l := range snap.Leases {
		if l.Ended() {
			continue
		}
		lag = max(lag, l.Checkpoint.MillisBehind)
		if l.UpdatedAt.After(at) {
			at = l.UpdatedAt
		}
	}
	if at.IsZero() {
		return 0, at, fmt.Errorf("no active leases in %s", store.Table())
	}
	return time.Duration(lag) * time.Millisecond, at, nil
}

func newExploreTokenCmd() *cobra.Command {
	var name, tenant string
	var admin bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make an access token and print it with the users-file entry that admits it",
		Long: `Make a random access token for one user and print the token (give it to the
user; it is shown once) and the entry to add to explore.users_file, which holds
only the token's SHA-256.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || (tenant == "") == !admin {
				return usageError{fmt.Errorf("give --name and either --tenant or --admin")}
			}
			tok := explorer.NewToken()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "token: %s\n\nusers file entry:\n  - name: %s\n    token_sha256: %s\n", tok, name, explorer.HashToken(tok))
			if admin {
				fmt.Fprintln(out, "    admin: true")
			} else {
				fmt.Fprintf(out, "    tenant: %s\n", tenant)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "user name (shown in the page and the logs)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "the customer whose data the user sees")
	cmd.Flags().BoolVar(&admin, "admin", false, "the user sees every customer")
	return cmd
}
