package pluginconf

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the .nuvom_plugins.toml reader: it never
// panics, and every error is positioned in the file (or names the file).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \"127.0.0.1:9464\"\n",
		"[[plugin]]\nimport = \"example.com/x\"\n[plugin.settings]\nwebhook = \"${HOOK}\"\nonly_failures = true\n",
		"[[plugin]]\nname = 1\n",
		"[[plugin]]\n[[plugin]]\nname = \"a\"\nname = \"b\"\n",
		"[plugin]\nname = \"x\"\n",
		"[[plugin]]\nname = \"x\"\n[plugin.settings]\nnested = { a = [1, 2, { b = 3 }] }\n",
		"\x00[[",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(FileName, data)
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) && !strings.HasPrefix(err.Error(), FileName) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for i := range file.Entries {
			e := &file.Entries[i]
			_ = e.EnvRefs()
			_ = e.KeyPos("addr")
		}
	})
}
