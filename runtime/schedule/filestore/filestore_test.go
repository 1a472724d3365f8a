package filestore_test

import (
	"testing"

	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/filestore"
	"github.com/nuvom/nuvom/runtime/schedule/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() (schedule.Store, error) { return filestore.Open(dir) }
	})
}
