// Package dashboard is Nuvom's web UI: an http.Handler that shows and
// operates the queues, jobs, tasks, schedules and workers of one store.
//
// Pages are rendered on the server with html/template (every value from a
// job, its arguments, errors and stacks included, is escaped); a few lines
// of embedded JavaScript convert times to the browser's zone and keep the
// overview's counters live through server-sent events. Everything is
// embedded in the binary: no CDN, it works offline.
//
// Mount it under a prefix behind your own authentication:
//
//	h, err := dashboard.New(dashboard.Options{Backend: b, Manifest: m})
//	mux.Handle("/nuvom/", http.StripPrefix("/nuvom", requireAdmin(h)))
//
// Every state change is a POST carrying a CSRF token (double-submit cookie);
// ReadOnly hides and refuses every action. No endpoint reads a file path or
// runs a command from a request.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/schedule"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a dashboard.
type Options struct {
	// Backend is the job store shown; required. Queue pauses, workers,
	// history, search and bulk actions need it to implement backend.Admin
	// (SQLite and memory do); without it those parts say so.
	Backend backend.Backend
	// Manifest names each task's parameters and types, its doc and options;
	// optional.
	Manifest *manifest.Manifest
	// Schedules is the schedule store shown on the Schedules page; optional.
	Schedules schedule.Store
	// ReadOnly hides every action and refuses every POST.
	ReadOnly bool
	// Token, when set, is required: as "Authorization: Bearer <token>", or
	// once as ?token=<token>, which sets a cookie. BasicAuth ("user:pass"),
	// when set, is required as HTTP basic authentication. Leave both empty
	// when the handler is mounted behind your own authentication.
	Token     string
	BasicAuth string
	// Prefix is the path the handler is mounted under ("/nuvom"), used in
	// links; when empty it is worked out from each request (what
	// http.StripPrefix removed).
	Prefix string
	// PollEvery is how often the live counters are refreshed, one poll shared
	// by every open page; default 1s.
	PollEvery time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives action and error lines; default discards.
	Logger *slog.Logger
}

// Handler is the dashboard. Make it with New; Close stops its live poller.
type Handler struct {
	o      Options
	admin  backend.Admin
	client *nuvom.Client
	tmpl   map[string]*template.Template
	mux    *http.ServeMux
	live   *hub

	statsCache statsCache
	history    historyCache

	// bg bounds the background work (counts, warm-up); Close cancels it.
	bg     context.Context
	stopBg context.CancelFunc
}

// New returns the dashboard for o.
func New(o Options) (*Handler, error) {
	if o.Backend == nil {
		return nil, errors.New("dashboard: Options.Backend is nil")
	}
	if o.BasicAuth != "" && !strings.Contains(o.BasicAuth, ":") {
		return nil, errors.New("dashboard: BasicAuth must be user:password")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	h := &Handler{o: o, client: nuvom.NewClient(o.Backend)}
	h.admin, _ = backend.AdminOf(o.Backend)
	if h.admin != nil {
		// A store reached through another process (a plugin's backend
		// served by an older worker, or one without operator tools) says
		// so only when asked: then the pages fall back to List, as for a
		// store without Admin.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := h.admin.Paused(ctx)
		cancel()
		if errors.Is(err, errors.ErrUnsupported) {
			h.admin = nil
		}
	}
	var err error
	if h.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	h.live = newHub(h)
	h.routes()
	h.bg, h.stopBg = context.WithCancel(context.Background())
	go h.warm()
	return h, nil
}

// warm counts the jobs and reads the history's closed buckets once in the
// background, so that the first page a user opens finds them ready.
func (h *Handler) warm() {
	_, _, _ = h.stats(h.bg)
	if h.admin != nil {
		now := h.o.Now()
		for _, f := range historyFilters(now) {
			_, _ = h.minutes(h.bg, f, now)
		}
		_, _ = h.minutes(h.bg, tasksFilter(now), now)
	}
}

// Close stops the live poller and the background work. It does not close
// the backend.
func (h *Handler) Close() error {
	h.stopBg()
	h.live.close()
	return nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /{$}", h.page("overview", h.overview))
	m.HandleFunc("GET /queues", h.page("queues", h.queues))
	m.HandleFunc("GET /jobs", h.page("jobs", h.jobs))
	m.HandleFunc("GET /jobs/{id}", h.page("job", h.job))
	m.HandleFunc("GET /tasks", h.page("tasks", h.tasks))
	m.HandleFunc("GET /schedules", h.page("schedules", h.schedules))
	m.HandleFunc("GET /workers", h.page("workers", h.workers))
	m.HandleFunc("GET /workflows", h.page("workflows", h.workflowsPage))
	m.HandleFunc("GET /workflows/{id}", h.page("workflow", h.workflowPage))
	m.HandleFunc("POST /workflows/{id}/{action}", h.action(h.workflowAction))
	m.HandleFunc("GET /quarantine", h.page("quarantine", h.quarantine))
	m.HandleFunc("GET /events", h.events)
	m.HandleFunc("GET /api/live", h.apiLive)
	m.HandleFunc("POST /jobs/{id}/{action}", h.action(h.jobAction))
	m.HandleFunc("POST /bulk", h.action(h.bulk))
	m.HandleFunc("POST /queues/{action}", h.action(h.queueAction)) // the queue is a form field: any name fits
	m.HandleFunc("POST /schedules/{id}/{action}", h.action(h.scheduleAction))
	h.mux = m
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP authenticates the request, sets the security headers and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
	if !h.authenticate(w, r) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

const (
	tokenCookie = "nuvom_token"
	csrfCookie  = "nuvom_csrf"
	csrfField   = "csrf"
	flashCookie = "nuvom_flash"
)

// authenticate checks the token or basic credentials when they are set.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if h.o.Token != "" {
		// ?token= first: it replaces the cookie of an earlier token.
		if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet && equal(t, h.o.Token) {
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: h.prefix(r) + "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, h.prefix(r)+u.RequestURI(), http.StatusSeeOther)
			return false
		}
		given := ""
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			given = strings.TrimPrefix(a, "Bearer ")
		} else if c, err := r.Cookie(tokenCookie); err == nil {
			given = c.Value
		}
		if !equal(given, h.o.Token) {
			http.Error(w, "401 unauthorized: this dashboard needs its token (open it once with ?token=... or send Authorization: Bearer ...)", http.StatusUnauthorized)
			return false
		}
	}
	if h.o.BasicAuth != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || !equal(user+":"+pass, h.o.BasicAuth) {
			w.Header().Set("WWW-Authenticate", `Basic realm="nuvom dashboard", charset="UTF-8"`)
			http.Error(w, "401 unauthorized", http.StatusUnauthorized)
			return false
		}
	}
	return true
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// prefix is the path the handler is mounted under, without a trailing slash.
func (h *Handler) prefix(r *http.Request) string {
	if h.o.Prefix != "" {
		return h.o.Prefix
	}
	full := r.RequestURI
	if i := strings.IndexAny(full, "?#"); i >= 0 {
		full = full[:i]
	}
	if strings.HasPrefix(full, "http://") || strings.HasPrefix(full, "https://") {
		return ""
	}
	if p, ok := strings.CutSuffix(full, r.URL.EscapedPath()); ok {
		return strings.TrimSuffix(p, "/")
	}
	return ""
}

// csrfToken returns the request's CSRF token, setting the cookie when it has none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: h.prefix(r) + "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return tok
}

// checkCSRF accepts a POST whose form token equals its cookie's and that
// no browser marks as cross-site.
func checkCSRF(r *http.Request) error {
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" {
		return errors.New("cross-site request refused")
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return errors.New("missing CSRF cookie: reload the page and try again")
	}
	if !equal(r.PostFormValue(csrfField), c.Value) {
		return errors.New("missing or wrong CSRF token: reload the page and try again")
	}
	return nil
}

// action wraps a state-changing handler: refused when read-only, CSRF
// checked, then a redirect back to the form's page with a flash message.
func (h *Handler) action(fn func(r *http.Request) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if h.o.ReadOnly {
			http.Error(w, "403 forbidden: this dashboard is read-only", http.StatusForbidden)
			return
		}
		if err := checkCSRF(r); err != nil {
			http.Error(w, "403 forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		msg, err := fn(r)
		if err != nil {
			h.o.Logger.Warn("dashboard action failed", "path", r.URL.Path, "err", err)
			msg = "Error: " + err.Error()
		} else {
			h.o.Logger.Info("dashboard action", "path", r.URL.Path, "result", msg)
		}
		back := r.PostFormValue("back")
		if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
			back = "/"
		}
		// The message rides in a short-lived cookie, not in the URL, so that
		// a link cannot make the dashboard show a text of someone's choosing.
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: h.prefix(r) + "/",
			MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, h.prefix(r)+back, http.StatusSeeOther)
	}
}

// reqCtx bounds the store calls of one request.
func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}

// IsLoopback reports whether addr (host:port) binds only loopback interfaces.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckBind refuses an address that is not host:port, and a non-loopback
// address without credentials.
func CheckBind(addr string, o Options) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("dashboard: address %q is not host:port (such as 127.0.0.1:8181): %w", addr, err)
	}
	if IsLoopback(addr) || o.Token != "" || o.BasicAuth != "" {
		return nil
	}
	return fmt.Errorf("dashboard: refusing to serve %s without credentials: anyone who can reach it could operate the queue; "+
		"bind 127.0.0.1 (the default), or set --token T (NUVOM_DASHBOARD_TOKEN) or --basic-auth user:pass", addr)
}
