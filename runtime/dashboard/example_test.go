package dashboard_test

import (
	"crypto/subtle"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// Mount the dashboard under /admin/nuvom/ of your own server, behind your
// own authentication. The handler works out its prefix from what
// http.StripPrefix removed; every action it offers is a POST with a CSRF
// token, and ReadOnly hides them all.
func Example_mount() {
	dir, _ := os.MkdirTemp("", "nuvom-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(filepath.Join(dir, "nuvom.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m, err := manifest.Load(".nuvom_tasks.json") // optional: names and types of the tasks' parameters
	if err != nil {
		m = nil
	}
	dash, err := dashboard.New(dashboard.Options{Backend: store, Manifest: m})
	if err != nil {
		log.Fatal(err)
	}
	defer dash.Close()

	requireAdmin := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth() // or your session, SSO, mTLS...
			if !ok || user != "ops" || subtle.ConstantTimeCompare([]byte(pass), []byte(os.Getenv("OPS_PASSWORD"))) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="admin"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/nuvom/", http.StripPrefix("/admin/nuvom", requireAdmin(dash)))
	_ = mux // http.ListenAndServe("127.0.0.1:8080", mux)
	// Output:
}
