package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/reachd/reachd/internal/api/httpjson"
	"golang.org/x/sys/unix"
)

// Caller is who sent a request: the peer's credentials on the unix socket
// (SO_PEERCRED), or the address and the credential's name over TCP.
type Caller struct {
	Unix     bool
	UID, PID int    // unix socket
	Addr     string // TCP: remote address
	Name     string // TCP: token name or client certificate common name
}

func (c Caller) String() string {
	if c.Unix {
		name := strconv.Itoa(c.UID)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username + "(" + name + ")"
		}
		return fmt.Sprintf("uid %s pid %d (unix socket)", name, c.PID)
	}
	if c.Name == "" {
		return c.Addr + " (tcp, no credential)"
	}
	return fmt.Sprintf("%s %q (tcp)", c.Addr, c.Name)
}

type callerKey struct{}

// CallerOf returns the caller of a request.
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// UnixConnContext is the http.Server ConnContext of the unix socket: it
// records the peer's uid and pid (SO_PEERCRED) for the audit log.
func UnixConnContext(ctx context.Context, c net.Conn) context.Context {
	caller := Caller{Unix: true, UID: -1}
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					caller.UID, caller.PID = int(cred.Uid), int(cred.Pid)
				}
			})
		}
	}
	return context.WithValue(ctx, callerKey{}, caller)
}

// Tokens are the bearer tokens of the TCP listener, by name.
type Tokens map[string]string

// LoadTokens reads a token file: one "NAME TOKEN" a line, # comments. A
// file that every local user can read is refused.
func LoadTokens(file string) (Tokens, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("api.token-file: %w", err)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("api.token-file %s: every local user can read it (mode %o); chmod o-r it (e.g. 0640 root:reachd)", file, st.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("api.token-file: %w", err)
	}
	t := Tokens{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: write NAME TOKEN (two words)", file, n)
		}
		if len(f[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: token of %s is shorter than 16 characters; use e.g. openssl rand -hex 32", file, n, f[0])
		}
		if _, dup := t[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: token name %s is used twice", file, n, f[0])
		}
		t[f[0]] = f[1]
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("api.token-file %s has no token; add a line NAME TOKEN", file)
	}
	return t, nil
}

// match returns the name of the token presented, or "".
func (t Tokens) match(presented string) string {
	found := ""
	for name, tok := range t {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(presented)) == 1 {
			found = name
		}
	}
	return found
}

// RequireCredential guards the TCP listener: a request needs a bearer
// token of tokens or a verified client certificate (mutual TLS), except
// the read-only routes listed in public ("GET /path-info"). Everything
// else is answered 401.
func RequireCredential(h http.Handler, tokens Tokens, public []string) http.Handler {
	pub := map[string]bool{}
	for _, r := range public {
		method, path, _ := strings.Cut(strings.TrimSpace(r), " ")
		pub[method+" "+strings.TrimSpace(path)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := Caller{Addr: r.RemoteAddr}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			caller.Name = "cert:" + r.TLS.VerifiedChains[0][0].Subject.CommonName
		} else if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") && tokens != nil {
			if name := tokens.match(strings.TrimPrefix(auth, "Bearer ")); name != "" {
				caller.Name = "token:" + name
			}
		}
		public := pub[r.Method+" "+r.URL.Path] || (r.Method == http.MethodHead && pub["GET "+r.URL.Path])
		if caller.Name == "" && !public {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reachd"`)
			httpjson.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: send Authorization: Bearer TOKEN (a token of api.token-file) or a client certificate"})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	})
}

// stateChangingGET are the GET routes that change state (gocast's
// /register and /unregister): audited like POSTs.
var stateChangingGET = map[string]bool{"/register": true, "/unregister": true}

// Audit logs every state-changing call (anything but GET and HEAD) with
// its caller, what it asked for and the answer's status: who forced a path
// down, who reloaded.
func Audit(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !stateChangingGET[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		req := strings.Join(strings.Fields(string(body)), " ")
		if len(req) > 512 {
			req = req[:512] + "..."
		}
		level := slog.LevelInfo
		if rec.code >= 400 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "api call", "caller", CallerOf(r.Context()).String(), "method", r.Method, "path", r.URL.Path, "request", req, "status", rec.code)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// ChownGroup gives the socket to group (so its members use reachctl
// without sudo). It returns the group the socket has afterwards and, when
// that is not group, why.
func ChownGroup(path, group string) (string, error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		return currentGroup(path), fmt.Errorf("group %s does not exist (create it: addgroup --system %s, or set api.socket-group)", group, group)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(path, -1, gid); err != nil {
		return currentGroup(path), fmt.Errorf("giving %s to group %s: %w", path, group, err)
	}
	return group, nil
}

func currentGroup(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "?"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(st.Gid))
}
