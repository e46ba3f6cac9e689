package main

import (
	"fmt"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/version"
	"github.com/spf13/cobra"
)

// versions is `reachctl version --json`: reachctl's own version and the
// daemon's (nil with the reason when the daemon did not answer).
type versions struct {
	Reachctl     clientVersion    `json:"reachctl"`
	Reachd       *apitype.Version `json:"reachd"`
	ReachdError  string           `json:"reachd-error,omitempty"`
	ReachdSocket string           `json:"reachd-socket"`
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print reachctl's version and the running reachd's (exit 3 when reachd does not answer)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			v := versions{Reachctl: clientVersion{Version: version.String(), GoVersion: version.Go()}, ReachdSocket: g.socket}
			dv, err := g.client().Version(c)
			if err == nil {
				v.Reachd = &dv
			} else {
				v.ReachdError = err.Error()
			}
			if g.json {
				if err != nil {
					// One JSON document on stdout: the versions, with the
					// error inside; the exit code still says 3.
					g.printJSON(v)
					return silentError{err}
				}
				return g.printJSON(v)
			}
			fmt.Fprintf(g.out, "reachctl %s (%s)\n", v.Reachctl.Version, v.Reachctl.GoVersion)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "reachd   %s (%s), pid %d, started %s, socket %s\n", dv.Version, dv.GoVersion, dv.PID, dv.Started.Format("2006-01-02 15:04:05 MST"), g.socket)
			return nil
		},
	}
}

// silentError carries an exit code for a command that has already printed
// its answer (report prints nothing more).
type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }

// clientVersion is reachctl's own part of `reachctl version --json`.
type clientVersion struct {
	Version   string `json:"version"`
	GoVersion string `json:"go-version"`
}
