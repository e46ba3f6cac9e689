// Package manpage generates the man pages of a cobra command tree (the
// Debian package ships them): a hidden `man-pages DIR` command that each
// binary adds to its root.
package manpage

import (
	"fmt"
	"os"
	"time"

	"github.com/reachd/reachd/internal/version"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Command returns the hidden `man-pages DIR` command: it writes one page
// per command of the root it is added to, in section (1 for reachctl, 8
// for reachd). $SOURCE_DATE_EPOCH, when set, dates the pages (reproducible
// builds).
func Command(section string) *cobra.Command {
	return &cobra.Command{
		Use:    "man-pages DIR",
		Short:  "write the man pages of every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			date := time.Now()
			var epoch int64
			if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &epoch); err == nil {
				date = time.Unix(epoch, 0).UTC()
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Section: section, Source: root.Name() + " " + version.String(), Manual: "reachd manual", Date: &date}
			return doc.GenManTree(root, hdr, args[0])
		},
	}
}
