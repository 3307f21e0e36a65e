//go:build !production

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/dev/devstack"
	"github.com/leasehold/leasehold/internal/logging"
)

// newDevCmd is `leasehold dev`: the local stack of Kinesis, DynamoDB, S3
// and OpenSearch on 127.0.0.1 (see internal/dev/devstack and docs/LOCAL_STACK.md).
func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local stack (Kinesis, DynamoDB, S3, OpenSearch, Elasticsearch) on 127.0.0.1",
		Long: `Installs, starts and stops local servers for tests and demos, all on 127.0.0.1:

  kinesis     npm kinesis-local ` + devstack.KinesisLocalVersion + `   dev.kinesis_port (HTTPS on port+1)
  dynamodb    npm dynalite ` + devstack.DynaliteVersion + `         dev.dynamodb_port
  s3          gofakes3 (this binary)     dev.s3_port
  opensearch  OpenSearch ` + devstack.OpenSearchVersion + `          dev.opensearch_port (transport on port+100)
  elasticsearch Elasticsearch ` + devstack.ElasticsearchVersion + `    dev.elasticsearch_port, HTTPS (transport on port+100);
              only when asked: 'dev up --with elasticsearch' or dev.elasticsearch: true.
              Secured as the zip ships it: HTTPS with its own CA, user ` + devstack.ElasticsearchUser + `
              (password ` + devstack.ElasticsearchPassword + `); 'dev env' and 'dev status' print both
  geoip       npm ` + devstack.GeoIPPackage + ` ` + devstack.GeoIPVersion + ` (a file for the demo; installed by
              'dev up' without --only, and by 'demo')

Downloads, data, logs and PID files live under dev.dir (default .leasehold).
Servers keep running after 'dev up' returns; 'dev down' stops them.`,
	}
	cmd.AddCommand(newDevUpCmd(), newDevDownCmd(), newDevStatusCmd(), newDevEnvCmd(), newDevS3ServerCmd())
	return cmd
}

func newDevUpCmd() *cobra.Command {
	var only, with string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Install what is missing, start every service not running, wait until each answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stack, _, err := newStack(cmd)
			if err != nil {
				return err
			}
			names, extra := splitServices(only), splitServices(with)
			if len(extra) > 0 {
				if len(names) > 0 {
					return usageError{errors.New("dev up: use --only or --with, not both")}
				}
				return devError(stack.UpWith(cmd.Context(), extra))
			}
			return devError(stack.Up(cmd.Context(), names))
		},
	}
	cmd.Flags().StringVar(&only, "only", "", "comma-separated services to start (kinesis,dynamodb,s3,opensearch,elasticsearch); default all but elasticsearch")
	cmd.Flags().StringVar(&with, "with", "", "comma-separated services to start besides the default ones (elasticsearch)")
	return cmd
}

func newDevDownCmd() *cobra.Command {
	var only string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the services 'dev up' started (by recorded PID, never by name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stack, _, err := newStack(cmd)
			if err != nil {
				return err
			}
			return devError(stack.Down(cmd.Context(), splitServices(only)))
		},
	}
	cmd.Flags().StringVar(&only, "only", "", "comma-separated services to stop; default all")
	return cmd
}

func newDevStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each service's state, PID, endpoint and version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stack, _, err := newStack(cmd)
			if err != nil {
				return err
			}
			rows, err := stack.Status(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tENDPOINT\tVERSION\tDETAIL")
			for _, r := range rows {
				pid := "-"
				if r.PID != 0 {
					pid = strconv.Itoa(r.PID)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, r.State, pid, r.Endpoint, r.Version, oneLine(r.Detail))
			}
			geo := "not installed"
			if stack.GeoIPInstalled() {
				geo = "installed"
			}
			fmt.Fprintf(tw, "geoip\t%s\t-\t-\t%s\t%s\n", geo, devstack.GeoIPVersion, stack.GeoIPCityDB())
			return tw.Flush()
		},
	}
}

func newDevEnvCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: `Print shell exports for the local stack: eval "$(leasehold dev env)"`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stack, _, err := newStack(cmd)
			if err != nil {
				return err
			}
			for _, l := range stack.Env(os.Getenv) {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		},
	}
}

// newDevS3ServerCmd is the S3 server 'dev up' spawns. It is hidden: users
// start it through 'dev up'. It reads no configuration file, so a broken
// one cannot stop it.
func newDevS3ServerCmd() *cobra.Command {
	var addr, dir string
	cmd := &cobra.Command{
		Use:    "s3-server",
		Short:  "Serve S3 (gofakes3) on a loopback address until SIGTERM",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" || dir == "" {
				return usageError{errors.New("dev s3-server: --addr and --dir are required")}
			}
			log, err := logging.New("info", "json")
			if err != nil {
				return err
			}
			defer log.Sync()
			return devstack.RunS3Server(cmd.Context(), addr, dir, log)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address, loopback only (e.g. 127.0.0.1:9000)")
	cmd.Flags().StringVar(&dir, "dir", "", "folder for buckets and objects")
	return cmd
}

// newStack builds the stack from the validated configuration.
func newStack(cmd *cobra.Command) (*devstack.Stack, *zap.Logger, error) {
	c, log, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find the leasehold executable: %w", err)
	}
	stack, err := devstack.New(devstack.Config{
		Dir:               c.Dev.Dir,
		KinesisPort:       c.Dev.KinesisPort,
		DynamoDBPort:      c.Dev.DynamoDBPort,
		S3Port:            c.Dev.S3Port,
		OpenSearchPort:    c.Dev.OpenSearchPort,
		ElasticsearchPort: c.Dev.ElasticsearchPort,
		Elasticsearch:     c.Dev.Elasticsearch,
		Executable:        exe,
	}, log)
	if err != nil {
		return nil, nil, devError(err)
	}
	return stack, log, nil
}

// devError marks the errors the user fixes by changing configuration or
// flags (a taken port, colliding ports, an unknown service) as usage
// errors.
func devError(err error) error {
	if err == nil {
		return nil
	}
	var pe *devstack.PortInUseError
	if errors.As(err, &pe) || errors.Is(err, devstack.ErrInvalidConfig) || errors.Is(err, devstack.ErrUnknownService) {
		return usageError{err}
	}
	return err
}

// splitServices turns "kinesis, dynamodb" into its names.
func splitServices(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// oneLine keeps the first line of a multi-line message for the table.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
