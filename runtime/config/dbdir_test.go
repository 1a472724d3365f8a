package config

import (
	"strings"
	"testing"
)

// TestDBIsADirectory: NUVOM_DB naming a folder is refused when the settings
// are read, saying so, instead of SQLite's "unable to open database file" or
// "disk I/O error" once a command opens it.
func TestDBIsADirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_DB": dir}))
	if err == nil || !strings.Contains(err.Error(), "NUVOM_DB") || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("NUVOM_DB=%s (a folder): err = %v, want one naming NUVOM_DB and saying it is a folder", dir, err)
	}
	if _, err := Load(t.TempDir(), env(map[string]string{"NUVOM_DB": dir + "/nuvom.db"})); err != nil {
		t.Fatalf("NUVOM_DB=<folder>/nuvom.db: %v", err)
	}
}
