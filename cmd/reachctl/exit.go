package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/reachd/reachd/internal/client"
	"github.com/spf13/cobra"
)

// Exit codes of reachctl, for scripts. They are listed in the README and in
// `reachctl --help`; a new condition gets a new number, an old number
// never changes its meaning.
const (
	ExitOK          = 0 // done
	ExitError       = 1 // any other failure (the daemon failed, a local file could not be read, ...)
	ExitUsage       = 2 // wrong command, argument or flag: nothing was sent
	ExitUnreachable = 3 // the daemon did not answer: not running, no socket, wrong --socket
	ExitNotFound    = 4 // the daemon does not know the service, path, group, flow or route named
	ExitRejected    = 5 // the daemon refused the request as invalid (bad reload config, bad value): nothing changed
	ExitDenied      = 6 // permission denied: socket permissions (join the api.socket-group), or 401/403 over TCP
)

const exitCodesHelp = `Exit codes:
  0  ok
  1  error (anything not listed below)
  2  usage: unknown command, wrong arguments or flags (nothing was sent)
  3  daemon unreachable (not running, no socket, wrong --socket)
  4  not found: the daemon does not know the service, path, group or flow
  5  rejected: the daemon refused the request as invalid; nothing changed
  6  permission denied (socket group, or 401/403 over TCP)
With --json, stdout holds exactly one JSON document: the answer, or
{"error": "...", "exit-code": N} on failure (and nothing is written to stderr).`

// usageError marks a mistake in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode classifies an error of a command.
func exitCode(err error) int {
	var ue usageError
	var ae *client.APIError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, client.ErrUnreachable) && errors.Is(err, os.ErrPermission):
		return ExitDenied
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable
	case errors.As(err, &ae):
		switch ae.Code {
		case http.StatusNotFound:
			return ExitNotFound
		case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
			return ExitRejected
		case http.StatusUnauthorized, http.StatusForbidden:
			return ExitDenied
		}
	case isCobraUsage(err):
		return ExitUsage
	}
	return ExitError
}

// isCobraUsage recognises the errors cobra itself returns for a bad command
// line (it has no typed errors for them).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "requires at most", "received "} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

// markUsage makes every argument check of the tree return a usageError, and
// flag parsing errors too, so that they exit with ExitUsage.
func markUsage(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		markUsage(c)
	}
}

// report prints err the way the caller asked for and returns the exit code.
func report(err error, asJSON bool, stdout, stderr io.Writer) int {
	code := exitCode(err)
	var se silentError
	if code == ExitOK || errors.As(err, &se) {
		return code
	}
	if asJSON {
		writeJSON(stdout, struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit-code"`
		}{err.Error(), code})
		return code
	}
	fmt.Fprintln(stderr, "reachctl:", err)
	if code == ExitUsage {
		fmt.Fprintln(stderr, "Run 'reachctl --help' (or COMMAND --help) for usage.")
	}
	return code
}
