package analyzer

import (
	"go/types"
	"reflect"
	"strings"

	"github.com/nuvom/nuvom/manifest"
)

// schemaBuilder turns go/types types into manifest type schemas, mirroring how
// vmihailenco/msgpack/v5 encodes them, and collects every reason a type cannot
// be serialized.
type schemaBuilder struct {
	pkg     *types.Package // the task's package, for printing types
	subject string         // "param order" or "result"
	stack   []string       // qualified names of the named types being expanded
	errs    []string
}

func (s *schemaBuilder) qualifier(p *types.Package) string {
	if p == s.pkg {
		return ""
	}
	return p.Name()
}

func (s *schemaBuilder) typeString(t types.Type) string {
	if types.Unalias(t) == types.Universe.Lookup("any").Type() {
		return "any"
	}
	if it, ok := t.(*types.Interface); ok && it.Empty() {
		return "any"
	}
	return types.TypeString(t, s.qualifier)
}

// fail records that the type at path is not serializable.
func (s *schemaBuilder) fail(path, problem string) {
	var where string
	switch {
	case path == "":
		where = s.subject
	case strings.HasPrefix(path, "["):
		where = s.subject + ": element " + path
	default:
		where = s.subject + ": field " + path
	}
	s.errs = append(s.errs, where+" "+problem)
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

var basicKinds = map[types.BasicKind]manifest.Kind{
	types.Bool: manifest.KindBool, types.Int: manifest.KindInt, types.Int8: manifest.KindInt8,
	types.Int16: manifest.KindInt16, types.Int32: manifest.KindInt32, types.Int64: manifest.KindInt64,
	types.Uint: manifest.KindUint, types.Uint8: manifest.KindUint8, types.Uint16: manifest.KindUint16,
	types.Uint32: manifest.KindUint32, types.Uint64: manifest.KindUint64, types.Float32: manifest.KindFloat32,
	types.Float64: manifest.KindFloat64, types.String: manifest.KindString,
}

func qualified(obj *types.TypeName) string {
	if obj.Pkg() == nil {
		return obj.Name()
	}
	return obj.Pkg().Path() + "." + obj.Name()
}

func isTimeType(t types.Type, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	obj := n.Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == "time" && obj.Name() == name
}

// schema returns the wire schema of t; path locates t inside the param or result.
func (s *schemaBuilder) schema(t types.Type, path string) manifest.Type {
	t = types.Unalias(t)
	switch {
	case isTimeType(t, "Time"):
		return manifest.Type{Kind: manifest.KindTime}
	case isTimeType(t, "Duration"):
		return manifest.Type{Kind: manifest.KindDuration}
	}
	if n, ok := t.(*types.Named); ok {
		return s.named(n, path)
	}
	return s.structure(t, nil, path)
}

func (s *schemaBuilder) named(n *types.Named, path string) manifest.Type {
	if n.TypeArgs().Len() > 0 {
		s.fail(path, "is "+s.typeString(n)+", an instance of a generic type: generic types are not supported; define a non-generic named type")
		return manifest.Type{Kind: manifest.KindStruct}
	}
	if _, isIface := n.Underlying().(*types.Interface); isIface {
		return s.structure(n.Underlying(), n, path)
	}
	if m := customEncoded(n); m != "" {
		s.fail(path, "is "+s.typeString(n)+", which has a "+m+" method (msgpack would encode it with that method, not field by field): custom encodings are not supported")
		return manifest.Type{Kind: manifest.KindStruct}
	}
	name := qualified(n.Obj())
	for _, open := range s.stack {
		if open == name {
			return manifest.Type{Kind: manifest.KindRef, Name: name}
		}
	}
	s.stack = append(s.stack, name)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	out := s.structure(n.Underlying(), n, path)
	out.Name = name
	return out
}

// structure describes an unnamed type, or the underlying type u of named.
func (s *schemaBuilder) structure(u types.Type, named *types.Named, path string) manifest.Type {
	show := u
	if named != nil {
		show = named
	}
	switch u := u.(type) {
	case *types.Basic:
		if k, ok := basicKinds[u.Kind()]; ok {
			return manifest.Type{Kind: k}
		}
		switch {
		case u.Info()&types.IsComplex != 0:
			s.fail(path, "is a complex number ("+s.typeString(show)+"): not serializable; use two floats")
		case u.Kind() == types.Uintptr:
			s.fail(path, "is a uintptr ("+s.typeString(show)+"): not serializable")
		case u.Kind() == types.UnsafePointer:
			s.fail(path, "is an unsafe.Pointer: not serializable")
		default:
			s.fail(path, "has type "+s.typeString(show)+": not serializable")
		}
		return manifest.Type{Kind: manifest.KindInt}
	case *types.Slice:
		if b, ok := u.Elem().Underlying().(*types.Basic); ok && b.Kind() == types.Uint8 {
			return manifest.Type{Kind: manifest.KindBytes}
		}
		elem := s.schema(u.Elem(), path+"[]")
		return manifest.Type{Kind: manifest.KindSlice, Elem: &elem}
	case *types.Array:
		elem := s.schema(u.Elem(), path+"[]")
		return manifest.Type{Kind: manifest.KindArray, Len: u.Len(), Elem: &elem}
	case *types.Map:
		kb, ok := u.Key().Underlying().(*types.Basic)
		if !ok || kb.Info()&(types.IsString|types.IsInteger|types.IsBoolean) == 0 || kb.Kind() == types.Uintptr {
			s.fail(path, "is "+s.typeString(show)+": map keys must be strings, integers or bools")
			return manifest.Type{Kind: manifest.KindMap, Key: &manifest.Type{Kind: manifest.KindString}, Elem: &manifest.Type{Kind: manifest.KindString}}
		}
		key := s.schema(u.Key(), path+"[key]")
		elem := s.schema(u.Elem(), path+"[]")
		return manifest.Type{Kind: manifest.KindMap, Key: &key, Elem: &elem}
	case *types.Pointer:
		elem := s.schema(u.Elem(), path)
		return manifest.Type{Kind: manifest.KindPointer, Elem: &elem}
	case *types.Struct:
		if named == nil {
			s.fail(path, "is an anonymous struct type ("+s.typeString(u)+"): use a named struct type")
			return manifest.Type{Kind: manifest.KindStruct}
		}
		return manifest.Type{Kind: manifest.KindStruct, Fields: s.fields(u, s.typeString(named), path)}
	case *types.Chan:
		s.fail(path, "is a channel ("+s.typeString(show)+"): not serializable")
	case *types.Signature:
		s.fail(path, "is a func ("+s.typeString(show)+"): not serializable")
	case *types.Interface:
		s.fail(path, "is an interface ("+s.typeString(show)+"): not serializable; use a concrete type")
	case *types.TypeParam:
		s.fail(path, "is a type parameter ("+s.typeString(show)+"): not serializable")
	default:
		s.fail(path, "has type "+s.typeString(show)+": not serializable")
	}
	return manifest.Type{Kind: manifest.KindStruct}
}

// parseTag splits a msgpack struct tag into its name and options.
func parseTag(tag string) (name string, opts map[string]bool) {
	v := reflect.StructTag(tag).Get("msgpack")
	parts := strings.Split(v, ",")
	opts = map[string]bool{}
	for _, o := range parts[1:] {
		if o = strings.TrimSpace(o); o != "" {
			k, _, _ := strings.Cut(o, "=")
			opts[k] = true
		}
	}
	return parts[0], opts
}

// customEncoded returns the method msgpack would encode t with instead of
// encoding it by its structure, or "".
func customEncoded(t types.Type) string {
	ms := types.NewMethodSet(types.NewPointer(t))
	for _, m := range []string{"EncodeMsgpack", "MarshalMsgpack", "MarshalBinary", "MarshalText"} {
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Obj().Name() == m {
				return m
			}
		}
	}
	return ""
}

// fields lists the wire fields of a struct the way msgpack's getFields does:
// msgpack:"-" skipped, tag names as wire keys, omitempty (also from a
// _msgpack marker field), embedded structs inlined unless they are tagged
// noinline, encode themselves, or would shadow a field already present.
func (s *schemaBuilder) fields(st *types.Struct, owner, path string) []manifest.Field {
	var (
		out     []manifest.Field
		seen    = map[string]bool{}
		omitAll bool
	)
	add := func(f manifest.Field, fpath string) {
		if seen[f.Wire] {
			s.fail(fpath, "uses the msgpack key "+quote(f.Wire)+" of an earlier field of "+owner+": rename or tag one of them")
			return
		}
		seen[f.Wire] = true
		out = append(out, f)
	}
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		name, opts := parseTag(st.Tag(i))
		if name == "-" {
			continue
		}
		fpath := join(path, f.Name())
		if f.Name() == "_msgpack" {
			if opts["as_array"] || opts["asArray"] {
				s.fail(path, "is "+owner+", tagged msgpack as_array: array-encoded structs are not supported")
			}
			if opts["omitempty"] {
				omitAll = true
			}
			continue
		}
		if f.Name() == "_" {
			continue
		}
		if !f.Exported() && !f.Embedded() {
			s.fail(fpath, "is unexported (in "+owner+"): msgpack would drop it; export it or tag it `msgpack:\"-\"`")
			continue
		}
		wire := name
		if wire == "" {
			wire = f.Name()
		}
		omit := omitAll || opts["omitempty"]
		if f.Embedded() && !opts["noinline"] {
			if inner, ok := s.inlinable(f.Type()); ok {
				sub := s.embedded(inner, fpath)
				shadowed := false
				for _, sf := range sub {
					if seen[sf.Wire] {
						shadowed = true
					}
				}
				if opts["inline"] {
					for _, sf := range sub {
						if !seen[sf.Wire] {
							add(sf, join(fpath, sf.Name))
						}
					}
					continue
				}
				if !shadowed {
					for _, sf := range sub {
						add(sf, join(fpath, sf.Name))
					}
					continue
				}
			} else if opts["inline"] {
				s.fail(fpath, "is tagged msgpack inline but is not a struct that msgpack can inline")
				continue
			}
		}
		add(manifest.Field{Name: f.Name(), Wire: wire, OmitEmpty: omit, Type: s.schema(f.Type(), fpath)}, fpath)
	}
	return out
}

// inlinable returns the named struct type behind an embedded field (through
// pointers) when msgpack would inline its fields.
func (s *schemaBuilder) inlinable(t types.Type) (*types.Named, bool) {
	t = types.Unalias(t)
	for {
		p, ok := t.(*types.Pointer)
		if !ok {
			break
		}
		t = types.Unalias(p.Elem())
	}
	n, ok := t.(*types.Named)
	if !ok || n.TypeArgs().Len() > 0 {
		return nil, false
	}
	if _, ok := n.Underlying().(*types.Struct); !ok || customEncoded(n) != "" {
		return nil, false
	}
	name := qualified(n.Obj())
	for _, open := range s.stack {
		if open == name {
			return nil, false
		}
	}
	return n, true
}

// embedded returns the wire fields an inlined embedded struct contributes.
func (s *schemaBuilder) embedded(n *types.Named, path string) []manifest.Field {
	name := qualified(n.Obj())
	s.stack = append(s.stack, name)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	return s.fields(n.Underlying().(*types.Struct), s.typeString(n), path)
}

func quote(s string) string { return `"` + s + `"` }
