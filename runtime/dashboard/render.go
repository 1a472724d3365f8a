package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

var pageNames = []string{"overview", "queues", "jobs", "job", "tasks", "schedules", "workers", "quarantine", "workflows", "workflow"}

var funcs = template.FuncMap{
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	},
	"dur":   fmtDur,
	"since": func(now, t time.Time) string { return fmtDur(now.Sub(t)) },
	// json renders a value as indented JSON text; html/template escapes it
	// for the page, so the text shows as it is (no \u003c escapes).
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Sprint(v)
		}
		return strings.TrimSuffix(buf.String(), "\n")
	},
	"pct": func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
	},
	"join": strings.Join,
	"str":  func(v any) string { return fmt.Sprint(v) },
	"mul":  func(a, b int) int { return a * b },
	// sub40 and scale40 map a percentage to the 40-unit-high chart.
	"sub40":   func(p float64) float64 { return 40 - 0.4*p },
	"scale40": func(p float64) float64 { return 0.4 * p },
	"list": func() [][3]string {
		return [][3]string{{"./", "Overview", "overview"}, {"queues", "Queues", "queues"}, {"jobs", "Jobs", "jobs"},
			{"tasks", "Tasks", "tasks"}, {"schedules", "Schedules", "schedules"}, {"workflows", "Workflows", "workflows"}, {"workers", "Workers", "workers"},
			{"quarantine", "Quarantine", "quarantine"}}
	},
	"add": func(a, b int) int { return a + b },
	// query builds a query string from key, value pairs (empty values
	// left out). Its result is already encoded: it is marked as a URL part
	// so that html/template does not encode its = and & again.
	"query": func(kv ...string) template.URL {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(q.Encode()) //nolint:gosec // url.Values.Encode escapes every key and value
	},
	"final": func(s backend.State) bool { return s.Final() },
	"cancellable": func(s backend.State) bool {
		return s == backend.StateScheduled || s == backend.StateQueued || s == backend.StateRetrying || s == backend.StateRunning
	},
	"retryable": func(s backend.State) bool {
		return s == backend.StateFailed || s == backend.StateCancelled || s == backend.StateQuarantined
	},
}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).Funcs(workflowFuncs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// fmtDur renders a duration compactly: 850ms, 12.3s, 4m05s, 3h12m, 2d04h.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// view is what every page template gets.
type view struct {
	Page     string
	Title    string
	Base     string // the mount prefix with a trailing slash, for <base href>
	Self     string // this page's path and query below the prefix, for forms' back
	CSRF     string
	ReadOnly bool
	Flash    string
	Now      time.Time
	Admin    bool // the store implements backend.Admin
	Data     any
}

// page renders a page whose data load returns.
func (h *Handler) page(name string, load func(r *http.Request) (string, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		title, data, err := load(r)
		if err != nil {
			status := http.StatusInternalServerError
			if se, ok := err.(statusError); ok {
				status = se.status
			}
			h.o.Logger.Warn("dashboard page", "page", name, "err", err)
			http.Error(w, err.Error(), status)
			return
		}
		self := r.URL.Path
		if q := r.URL.Query(); len(q) > 0 {
			self += "?" + q.Encode()
		}
		flash := ""
		if c, err := r.Cookie(flashCookie); err == nil {
			flash, _ = url.QueryUnescape(c.Value)
			http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: h.prefix(r) + "/", MaxAge: -1})
		}
		v := view{Page: name, Title: title, Base: h.prefix(r) + "/", Self: self, CSRF: h.csrfToken(w, r),
			ReadOnly: h.o.ReadOnly, Flash: flash, Now: h.o.Now(), Admin: h.admin != nil, Data: data}
		var buf bytes.Buffer
		if err := h.tmpl[name].Execute(&buf, v); err != nil {
			h.o.Logger.Error("dashboard render", "page", name, "err", err)
			http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}
}

// statusError is an error with its HTTP status.
type statusError struct {
	status int
	msg    string
}

func (e statusError) Error() string { return e.msg }
