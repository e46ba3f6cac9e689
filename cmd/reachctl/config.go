package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/reachd/reachd/internal/envimport"
	"github.com/spf13/cobra"
)

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "work with config files (no daemon needed)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "import-env FILE.env",
		Short: "print the reachd YAML equivalent to a fastbypass monitor .env file",
		Long: "Reads the fastbypass monitor's .env (LISTEN_HB_HOST[i], LISTEN_HB_PORT[i], BYPASS_CARD_HOST[i],\n" +
			"BYPASS_CARD_IFS, LISTEN_HEARTBEAT_FAILED/ATTEMPTS/TIMEOUT, LISTEN_CUBRO_IFS[...],\n" +
			"LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS[...]) and prints the heartbeats section of a reachd\n" +
			"config on stdout. Unknown or malformed lines are printed on stderr as FILE:LINE: problem,\n" +
			"and the exit status is then 1 (the YAML printed covers the lines that could be read).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			env, probs := envimport.Parse(args[0], data)
			if g.json {
				out := importResult{YAML: env.YAML(), Problems: []string{}}
				for _, p := range probs {
					out.Problems = append(out.Problems, p.Error())
				}
				g.printJSON(out)
				if len(probs) > 0 {
					return silentError{errors.New("the .env file has problems; the YAML is incomplete")}
				}
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), env.YAML())
			if len(probs) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), probs)
				return errors.New("the .env file has problems (listed above); the YAML is incomplete")
			}
			return nil
		},
	})
	return cmd
}

// importResult is `reachctl config import-env --json`.
type importResult struct {
	YAML     string   `json:"yaml"`
	Problems []string `json:"problems"`
}
