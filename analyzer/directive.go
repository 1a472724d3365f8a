package analyzer

import (
	"strconv"
	"strings"
)

// Directive is the comment prefix that marks a task function.
const Directive = "//nuvom:task"

// KV is one key=value pair of a //nuvom:task annotation.
type KV struct {
	Key   string
	Value string
	// Col is the 1-based byte column of the key within the text given to ParseDirective.
	Col int
}

// DirectiveError is one syntax problem in an annotation, at a 1-based byte column
// of the text given to ParseDirective.
type DirectiveError struct {
	Col int
	Msg string
}

func (e DirectiveError) Error() string { return "col " + strconv.Itoa(e.Col) + ": " + e.Msg }

// DirectiveErrors are all the syntax problems of one annotation, in column order.
type DirectiveErrors []DirectiveError

func (es DirectiveErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func isSep(c byte) bool { return c == ' ' || c == '\t' }

func isKeyStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isKeyByte(c byte) bool { return isKeyStart(c) || ('0' <= c && c <= '9') }

// ParseDirective parses the text after "//nuvom:task": space-separated key=value
// pairs whose values may be double-quoted Go strings ("send email", "a, b").
// It reports every problem it can find (bare words, empty keys or values,
// unterminated or malformed quotes, duplicate keys) as a DirectiveErrors, and
// returns the well-formed pairs, first occurrence of each key only.
func ParseDirective(text string) ([]KV, error) {
	var (
		kvs  []KV
		errs DirectiveErrors
		seen = map[string]int{}
	)
	i := 0
	for i < len(text) {
		if isSep(text[i]) {
			i++
			continue
		}
		start := i
		col := start + 1
		for i < len(text) && !isSep(text[i]) && text[i] != '=' && text[i] != '"' {
			i++
		}
		key := text[start:i]
		if i >= len(text) || isSep(text[i]) {
			errs = append(errs, DirectiveError{col, "expected key=value, found " + strconv.Quote(key)})
			continue
		}
		if text[i] == '"' {
			errs = append(errs, DirectiveError{i + 1, "unexpected '\"' in key " + strconv.Quote(key) + ": only values may be quoted"})
			i = skipToken(text, i)
			continue
		}
		// text[i] == '='
		bad := false
		switch {
		case key == "":
			errs = append(errs, DirectiveError{col, "missing key before '='"})
			bad = true
		case !validKey(key):
			errs = append(errs, DirectiveError{col, "invalid key " + strconv.Quote(key) + ": keys are letters, digits and '_'"})
			bad = true
		}
		i++ // past '='
		var value string
		switch {
		case i >= len(text) || isSep(text[i]):
			errs = append(errs, DirectiveError{col, "key " + key + " has no value (write " + key + `="" for an empty value)`})
			continue
		case text[i] == '"':
			qstart := i
			end, ok := scanQuoted(text, i)
			if !ok {
				errs = append(errs, DirectiveError{qstart + 1, "unterminated quoted value for key " + key})
				return kvs, errs
			}
			v, err := strconv.Unquote(text[qstart:end])
			if err != nil {
				errs = append(errs, DirectiveError{qstart + 1, "malformed quoted value for key " + key + ": " + text[qstart:end]})
				bad = true
			}
			value = v
			i = end
			if i < len(text) && !isSep(text[i]) {
				errs = append(errs, DirectiveError{i + 1, "unexpected text after the quoted value of key " + key + ": separate pairs with spaces"})
				i = skipToken(text, i)
				continue
			}
		default:
			vstart := i
			for i < len(text) && !isSep(text[i]) {
				if text[i] == '"' {
					errs = append(errs, DirectiveError{i + 1, "unexpected '\"' in the value of key " + key + ": quote the whole value"})
					bad = true
					i = skipToken(text, i)
					break
				}
				i++
			}
			value = text[vstart:i]
		}
		if bad {
			continue
		}
		if first, dup := seen[key]; dup {
			errs = append(errs, DirectiveError{col, "duplicate key " + key + " (first at col " + strconv.Itoa(first) + ")"})
			continue
		}
		seen[key] = col
		kvs = append(kvs, KV{Key: key, Value: value, Col: col})
	}
	if len(errs) > 0 {
		return kvs, errs
	}
	return kvs, nil
}

func validKey(k string) bool {
	if k == "" || !isKeyStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isKeyByte(k[i]) {
			return false
		}
	}
	return true
}

// skipToken advances past the rest of a malformed token, honouring quotes so a
// quoted space does not start a new pair.
func skipToken(text string, i int) int {
	for i < len(text) && !isSep(text[i]) {
		if text[i] == '"' {
			end, ok := scanQuoted(text, i)
			if !ok {
				return len(text)
			}
			i = end
			continue
		}
		i++
	}
	return i
}

// scanQuoted returns the index just past the closing quote of the Go string
// literal starting at text[i] == '"'.
func scanQuoted(text string, i int) (int, bool) {
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// RenderDirective writes pairs back as annotation text (without the
// "//nuvom:task" prefix), quoting values that need it; ParseDirective reads it
// back to the same pairs.
func RenderDirective(kvs []KV) string {
	var b strings.Builder
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv.Key)
		b.WriteByte('=')
		if needsQuote(kv.Value) {
			b.WriteString(strconv.Quote(kv.Value))
		} else {
			b.WriteString(kv.Value)
		}
	}
	return b.String()
}

func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c == '"' || c == '\\' || c >= 0x7f {
			return true
		}
	}
	return false
}
