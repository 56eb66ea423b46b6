// Package fakegit is a provider's Git host in miniature: bare repositories
// served over Git's smart HTTP by the real `git http-backend` (a CGI run
// through net/http/cgi), behind the check GitHub, GitLab and Bitbucket
// make: HTTP Basic with the host's user name (x-access-token, oauth2,
// x-token-auth) and an access token the provider issued that is still
// valid; anything else is 401, as an expired token gets at the real hosts.
// The user names are the providers' documented ones for an OAuth token:
// GitHub, "git clone https://x-access-token:TOKEN@github.com/…"
// (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation);
// GitLab, "git clone https://oauth2:ACCESS_TOKEN@gitlab.example.com/…"
// (https://docs.gitlab.com/api/oauth2/, "Access Git over HTTPS with
// access token"); Bitbucket Cloud, "git clone
// https://x-token-auth:{access_token}@bitbucket.org/user/repo.git", "the
// literal string x-token-auth as a substitute for username is required"
// (https://support.atlassian.com/bitbucket-cloud/docs/use-oauth-on-bitbucket-cloud/).
//
// `arbor dev` puts one behind each fake GitHub, GitLab and Bitbucket, so
// that a clone through Arbor's Git proxy works on one machine; the Git
// proxy's end-to-end tests clone from one. It needs git installed (its
// http-backend and, to create the repositories, git itself): Start says
// so when it is not.
package fakegit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Options configure a Host.
type Options struct {
	// User is the Basic user name the host takes with a token. Required.
	User string
	// ValidToken reports whether a token is one the provider issued and is
	// still valid (fakeprovider.Provider.ValidAccessToken). Required.
	ValidToken func(token string) bool
	// Repos are the repositories to create, by path ("octocat/hello-world",
	// "group/sub/app"), each with its files (name → content), committed
	// on branch main.
	Repos map[string]map[string]string
	// Dir holds the bare repositories (Dir/octocat/hello-world.git).
	// Default: a new temporary directory, removed by Close.
	Dir string
	// Addr is where to listen. Default 127.0.0.1:0.
	Addr string
}

// Host is a running fake Git host.
type Host struct {
	opts    Options
	backend string
	srv     *http.Server
	ln      net.Listener
	ownDir  bool
}

// Start creates the repositories and serves them.
func Start(opts Options) (*Host, error) {
	if opts.User == "" || opts.ValidToken == nil {
		return nil, errors.New("fakegit: Options.User and ValidToken are required")
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("fakegit: git is not installed (%w); install git to serve fake repositories", err)
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("fakegit: git --exec-path: %w", err)
	}
	h := &Host{opts: opts, backend: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")}
	if _, err := os.Stat(h.backend); err != nil {
		return nil, fmt.Errorf("fakegit: git http-backend not found: %w", err)
	}
	if h.opts.Dir == "" {
		if h.opts.Dir, err = os.MkdirTemp("", "fakegit"); err != nil {
			return nil, err
		}
		h.ownDir = true
	}
	if err := h.create(); err != nil {
		h.Close()
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if h.ln, err = net.Listen("tcp", addr); err != nil {
		h.Close()
		return nil, fmt.Errorf("fakegit: %w", err)
	}
	h.srv = &http.Server{Handler: h}
	go func() { _ = h.srv.Serve(h.ln) }()
	return h, nil
}

// create makes each repository: a commit of its files on main, cloned
// bare into Dir.
func (h *Host) create() error {
	paths := make([]string, 0, len(h.opts.Repos))
	for p := range h.opts.Repos {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		work, err := os.MkdirTemp("", "fakegit-work")
		if err != nil {
			return err
		}
		err = h.commit(work, p)
		_ = os.RemoveAll(work)
		if err != nil {
			return fmt.Errorf("fakegit: creating %s: %w", p, err)
		}
	}
	return nil
}

func (h *Host) commit(work, repo string) error {
	if err := git(work, "init", "-q", "-b", "main", "."); err != nil {
		return err
	}
	names := make([]string, 0, len(h.opts.Repos[repo]))
	for name, content := range h.opts.Repos[repo] {
		f := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return err
		}
		names = append(names, name)
	}
	if err := git(work, append([]string{"add", "--"}, names...)...); err != nil {
		return err
	}
	if err := git(work, "commit", "-q", "--allow-empty", "-m", "Initial commit"); err != nil {
		return err
	}
	return git("", "clone", "-q", "--bare", work, filepath.Join(h.opts.Dir, filepath.FromSlash(repo)+".git"))
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=The Octocat", "GIT_AUTHOR_EMAIL=octocat@example.test",
		"GIT_COMMITTER_NAME=The Octocat", "GIT_COMMITTER_EMAIL=octocat@example.test")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// URL is the host's base URL (http://127.0.0.1:port): a repository is
// URL/octocat/hello-world.git.
func (h *Host) URL() string { return "http://" + h.ln.Addr().String() }

// Dir is the directory of the bare repositories.
func (h *Host) Dir() string { return h.opts.Dir }

// ServeHTTP checks the Basic credentials and runs git http-backend.
// Pushes are allowed (http.receivepack).
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != h.opts.User || !h.opts.ValidToken(pass) {
		w.Header().Set("WWW-Authenticate", `Basic realm="fake Git host"`)
		http.Error(w, "Invalid username or token.", http.StatusUnauthorized)
		return
	}
	(&cgi.Handler{Path: h.backend, Env: []string{
		"GIT_PROJECT_ROOT=" + h.opts.Dir, "GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
	}}).ServeHTTP(w, r)
}

// Close stops serving and removes a directory Start made.
func (h *Host) Close() {
	if h.srv != nil {
		_ = h.srv.Close()
	}
	if h.ownDir {
		_ = os.RemoveAll(h.opts.Dir)
	}
}
