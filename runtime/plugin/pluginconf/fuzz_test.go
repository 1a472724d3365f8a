package pluginconf

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the .nuvom_plugins.toml reader: it never
// panics, and every error is positioned in the file (or names the file).
// The settings of what parses are checked and decoded with no variable set:
// that never panics, and a decode fails for an unset variable only when
// EnvRefs named one (a reference with a default needs none).
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
		"[[plugin]]\nimport = \"example.com/x\"\n[plugin.settings]\naddr = \"${H:-127.0.0.1}:${P:-}\"\nrefresh = \"${E:-30}s\"\n",
		"[[plugin]]\nimport = \"example.com/x\"\n[plugin.settings]\naddr = \"${H:-${O}}\"\ntags = [\"${T}\", \"${U:-u}\"]\n",
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
			refs := e.EnvRefs()
			_ = e.KeyPos("addr")
			err := e.Decode("x", &testSettings{}, func(string) (string, bool) { return "", false })
			if err != nil && strings.Contains(err.Error(), "is not set") && len(refs) == 0 {
				t.Fatalf("decode with nothing set: %v, yet EnvRefs names no variable", err)
			}
		}
	})
}
