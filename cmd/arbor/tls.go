package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/admin"
)

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Inspect the certificates Arbor serves",
	}
	cmd.AddCommand(newTLSStatusCmd())
	return cmd
}

func newTLSStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Print the certificates the running server serves",
		Long: `Ask the 'arbor serve' running on this data_dir (through its admin socket)
which certificates it serves: from tls.cert_file, or obtained with ACME
(tls.acme.domains). Prints each certificate's names, issuer and expiry,
and for ACME the CA and the failed attempts to obtain or renew since
start (each is in the server log with the CA's answer). The same figures
are on /metrics (docs/tls.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st admin.TLSStatus
			if err := askServer(cmd, "tls status", func(c *admin.Client) (err error) {
				st, err = c.TLSStatus(cmd.Context())
				return err
			}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch st.Source {
			case "":
				fmt.Fprintln(out, "https: off (plain http; set tls.cert_file or tls.acme.domains)")
				return nil
			case "acme":
				fmt.Fprintf(out, "source: acme (%s) for %s\n", st.CA, strings.Join(st.Domains, ", "))
				fmt.Fprintf(out, "renewal failures since start: %d\n", st.RenewalFailures)
			default:
				fmt.Fprintf(out, "source: %s\n", st.Source)
			}
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAMES\tISSUER\tEXPIRES\tIN")
			for _, c := range st.Certificates {
				left := time.Until(c.NotAfter).Truncate(time.Minute)
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", strings.Join(c.Names, ","), c.Issuer, c.NotAfter.UTC().Format(time.RFC3339), left)
			}
			return w.Flush()
		},
	}
}
