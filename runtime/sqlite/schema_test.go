package sqlite

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPartialIndexesHaveNoLongInLists guards the cost of every state
// change: SQLite evaluates each partial index's WHERE on the rows a write
// changes, and codes an IN list of more than two constants as a probe of a
// table it builds anew for every statement run (about 5 µs per completion
// of a job when jobs_bad said state IN (three states)). Such a WHERE must
// be written with ORs.
func TestPartialIndexesHaveNoLongInLists(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "idx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows, err := b.read.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	inList := regexp.MustCompile(`(?i)\bIN\s*\(([^()]*)\)`)
	partial := 0
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			t.Fatal(err)
		}
		_, where, ok := strings.Cut(strings.ToUpper(sql), " WHERE ")
		if !ok {
			continue
		}
		partial++
		for _, m := range inList.FindAllStringSubmatch(where, -1) {
			if n := len(strings.Split(m[1], ",")); n > 2 {
				t.Errorf("index %s: WHERE has an IN list of %d values (%s); write it with ORs", name, n, sql)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if partial == 0 {
		t.Fatal("no partial index found: the query reads the wrong thing")
	}
}
