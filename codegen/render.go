package codegen

import (
	"bytes"
	"go/format"
	"strings"

	"github.com/dave/jennifer/jen"
)

// render renders f, gofmt'ed, with its imports grouped the goimports way:
// standard library first, then a blank line, then everything else.
func render(f *jen.File) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		return nil, err
	}
	return groupImports(buf.Bytes())
}

// groupImports splits a jen import block (one sorted group) into the standard
// library's imports and the rest.
func groupImports(src []byte) ([]byte, error) {
	const open, close = "\nimport (\n", "\n)\n"
	start := bytes.Index(src, []byte(open))
	if start < 0 {
		return src, nil
	}
	start += len(open)
	end := bytes.Index(src[start:], []byte(close))
	if end < 0 {
		return src, nil
	}
	end += start
	var std, other []string
	for _, line := range strings.Split(string(src[start:end]), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if isStd(line) {
			std = append(std, line)
		} else {
			other = append(other, line)
		}
	}
	if len(std) == 0 || len(other) == 0 {
		return src, nil
	}
	block := strings.Join(std, "\n") + "\n\n" + strings.Join(other, "\n")
	out := append(append(append([]byte(nil), src[:start]...), block...), src[end:]...)
	return format.Source(out)
}

// isStd reports whether an import line names a standard library package: its
// path's first element has no dot.
func isStd(line string) bool {
	i := strings.IndexByte(line, '"')
	if i < 0 {
		return false
	}
	path := strings.Trim(line[i:], `"`)
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
