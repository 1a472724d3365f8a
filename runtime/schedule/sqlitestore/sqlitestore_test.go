package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/sqlitestore"
	"github.com/nuvom/nuvom/runtime/schedule/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "nuvom.db")
		return func() (schedule.Store, error) { return sqlitestore.Open(path) }
	})
}
