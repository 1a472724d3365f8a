package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// ComputeSignature hashes what a job's payload depends on: the wire schema of
// the params (in order) and of the result, and the task's version option.
// Param names, docs and other options do not change it. Named types count by
// their bare name, so moving a type to another package keeps the hash while
// renaming it or changing its fields changes it.
func (t *Task) ComputeSignature() string {
	var b strings.Builder
	b.WriteString("nuvom-sig-1(")
	for i, p := range t.Params {
		if i > 0 {
			b.WriteByte(',')
		}
		p.Type.writeWire(&b)
	}
	b.WriteString(")->")
	if t.Result == nil {
		b.WriteString("error")
	} else {
		t.Result.writeWire(&b)
	}
	b.WriteString(";v")
	b.WriteString(strconv.Itoa(t.Options.Version))
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

func (t *Type) writeWire(b *strings.Builder) {
	if t.Name != "" {
		b.WriteString(bareTypeName(t.Name))
		if t.Kind == KindRef {
			return
		}
		b.WriteByte('=')
	}
	switch t.Kind {
	case KindSlice, KindPointer:
		b.WriteString(string(t.Kind))
		b.WriteByte('<')
		t.Elem.writeWire(b)
		b.WriteByte('>')
	case KindArray:
		b.WriteString("array" + strconv.FormatInt(t.Len, 10) + "<")
		t.Elem.writeWire(b)
		b.WriteByte('>')
	case KindMap:
		b.WriteString("map<")
		t.Key.writeWire(b)
		b.WriteByte(',')
		t.Elem.writeWire(b)
		b.WriteByte('>')
	case KindStruct:
		b.WriteString("struct{")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(f.Wire))
			b.WriteByte(':')
			f.Type.writeWire(b)
		}
		b.WriteByte('}')
	default:
		b.WriteString(string(t.Kind))
	}
}

// bareTypeName drops the package from a qualified type name:
// "example.com/shop/images.Thumb" becomes "Thumb".
func bareTypeName(qualified string) string {
	short := shortName(qualified)
	if i := strings.Index(short, "."); i >= 0 {
		return short[i+1:]
	}
	return short
}
