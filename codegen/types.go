package codegen

import (
	"fmt"
	"go/token"
	"strings"

	"github.com/dave/jennifer/jen"
	"github.com/nuvom/nuvom/manifest"
)

// maxDepth bounds the nesting of unnamed composite types codegen renders.
const maxDepth = 64

var backoffs = map[string]string{
	manifest.BackoffFixed:       "BackoffFixed",
	manifest.BackoffExponential: "BackoffExponential",
}

var timeoutPolicies = map[string]string{
	manifest.TimeoutRetry:  "TimeoutRetry",
	manifest.TimeoutFail:   "TimeoutFail",
	manifest.TimeoutIgnore: "TimeoutIgnore",
}

// basicNames are the Go spellings of the basic kinds that have one.
var basicNames = map[manifest.Kind]string{
	manifest.KindBool: "bool", manifest.KindString: "string",
	manifest.KindInt: "int", manifest.KindInt8: "int8", manifest.KindInt16: "int16",
	manifest.KindInt32: "int32", manifest.KindInt64: "int64",
	manifest.KindUint: "uint", manifest.KindUint8: "uint8", manifest.KindUint16: "uint16",
	manifest.KindUint32: "uint32", manifest.KindUint64: "uint64",
	manifest.KindFloat32: "float32", manifest.KindFloat64: "float64",
}

// named returns the import path and name of t's named type, or ok false for
// an unnamed type. time.Time and time.Duration count as unnamed: their kinds
// say it all.
func named(t *manifest.Type) (pkg, name string, ok bool) {
	if t.Name == "" || t.Name == "time.Time" && t.Kind == manifest.KindTime ||
		t.Name == "time.Duration" && t.Kind == manifest.KindDuration {
		return "", "", false
	}
	i := strings.LastIndex(t.Name, ".")
	if i <= 0 {
		return "", t.Name, true
	}
	return t.Name[:i], t.Name[i+1:], true
}

// checkType reports a type codegen cannot render in package local.
func checkType(t *manifest.Type, local string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("type nests deeper than %d levels", maxDepth)
	}
	if pkg, name, ok := named(t); ok {
		switch {
		case strings.ContainsAny(t.Name, "[]"):
			return fmt.Errorf("type %s: instantiated generic types are not supported", t.Name)
		case pkg == "" || !token.IsIdentifier(name):
			return fmt.Errorf("type name %q is not of the form importpath.Name", t.Name)
		case pkg != local && !token.IsExported(name):
			return fmt.Errorf("type %s is unexported in another package", t.Name)
		}
		if t.Kind == manifest.KindRef || t.Kind.IsBasic() || knownComposite(t.Kind) {
			return nil
		}
		return fmt.Errorf("type %s has unknown kind %q", t.Name, t.Kind)
	}
	switch t.Kind {
	case manifest.KindBytes, manifest.KindTime, manifest.KindDuration:
		return nil
	case manifest.KindRef:
		return fmt.Errorf("ref type has no name")
	case manifest.KindSlice, manifest.KindPointer:
		return checkElem(t, local, depth)
	case manifest.KindArray:
		if t.Len < 0 {
			return fmt.Errorf("array has negative length %d", t.Len)
		}
		return checkElem(t, local, depth)
	case manifest.KindMap:
		if t.Key == nil {
			return fmt.Errorf("map type has no key")
		}
		if err := checkType(t.Key, local, depth+1); err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		return checkElem(t, local, depth)
	case manifest.KindStruct:
		seen := map[string]bool{}
		for _, f := range t.Fields {
			if !token.IsIdentifier(f.Name) || seen[f.Name] {
				return fmt.Errorf("struct field name %q is not a Go identifier or is repeated", f.Name)
			}
			seen[f.Name] = true
			if strings.ContainsAny(f.Wire, "\"`,") {
				return fmt.Errorf("struct field %s: wire name %q cannot be written as a tag", f.Name, f.Wire)
			}
			if err := checkType(&f.Type, local, depth+1); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
		return nil
	}
	if _, ok := basicNames[t.Kind]; ok {
		return nil
	}
	return fmt.Errorf("unsupported kind %q", t.Kind)
}

func knownComposite(k manifest.Kind) bool {
	switch k {
	case manifest.KindSlice, manifest.KindArray, manifest.KindMap, manifest.KindPointer, manifest.KindStruct:
		return true
	}
	return false
}

func checkElem(t *manifest.Type, local string, depth int) error {
	if t.Elem == nil {
		return fmt.Errorf("%s type has no elem", t.Kind)
	}
	return checkType(t.Elem, local, depth+1)
}

// goType renders t as Go source. Named types are qualified by import path;
// jen prints names of the file's own package unqualified. t must have passed
// checkType.
func goType(t *manifest.Type) jen.Code {
	if pkg, name, ok := named(t); ok {
		return jen.Qual(pkg, name)
	}
	switch t.Kind {
	case manifest.KindBytes:
		return jen.Index().Byte()
	case manifest.KindTime:
		return jen.Qual("time", "Time")
	case manifest.KindDuration:
		return jen.Qual("time", "Duration")
	case manifest.KindSlice:
		return jen.Index().Add(goType(t.Elem))
	case manifest.KindArray:
		return jen.Index(jen.Lit(int(t.Len))).Add(goType(t.Elem))
	case manifest.KindMap:
		return jen.Map(goType(t.Key)).Add(goType(t.Elem))
	case manifest.KindPointer:
		return jen.Op("*").Add(goType(t.Elem))
	case manifest.KindStruct:
		fields := make([]jen.Code, len(t.Fields))
		for i, f := range t.Fields {
			field := jen.Id(f.Name).Add(goType(&f.Type))
			if tag := msgpackTag(f); tag != "" {
				field.Tag(map[string]string{"msgpack": tag})
			}
			fields[i] = field
		}
		return jen.Struct(fields...)
	}
	return jen.Id(basicNames[t.Kind])
}

// msgpackTag is the tag an unnamed struct's field needs to keep its wire name.
func msgpackTag(f manifest.Field) string {
	tag := ""
	if f.Wire != f.Name {
		tag = f.Wire
	}
	if f.OmitEmpty {
		tag += ",omitempty"
	}
	return tag
}

// typeIdents adds to out every identifier that the rendering of t refers to
// in a function body of package local, using the file's import aliases.
func typeIdents(t *manifest.Type, local string, aliases map[string]string, out map[string]bool) {
	if pkg, name, ok := named(t); ok {
		if pkg == local {
			out[name] = true
		} else {
			out[aliases[pkg]] = true
		}
		return
	}
	switch t.Kind {
	case manifest.KindBytes:
		out["byte"] = true
	case manifest.KindTime, manifest.KindDuration:
		out[aliases["time"]] = true
	case manifest.KindSlice, manifest.KindArray, manifest.KindPointer:
		typeIdents(t.Elem, local, aliases, out)
	case manifest.KindMap:
		typeIdents(t.Key, local, aliases, out)
		typeIdents(t.Elem, local, aliases, out)
	case manifest.KindStruct:
		for i := range t.Fields {
			typeIdents(&t.Fields[i].Type, local, aliases, out)
		}
	default:
		out[basicNames[t.Kind]] = true
	}
}

// typePaths adds to out the import path of every package t's rendering names.
func typePaths(t *manifest.Type, out map[string]bool) {
	if pkg, _, ok := named(t); ok {
		out[pkg] = true
		return
	}
	switch t.Kind {
	case manifest.KindTime, manifest.KindDuration:
		out["time"] = true
	case manifest.KindSlice, manifest.KindArray, manifest.KindPointer:
		typePaths(t.Elem, out)
	case manifest.KindMap:
		typePaths(t.Key, out)
		typePaths(t.Elem, out)
	case manifest.KindStruct:
		for i := range t.Fields {
			typePaths(&t.Fields[i].Type, out)
		}
	}
}

// codec says how one parameter goes through ArgWriter and ArgReader.
type codec struct {
	// method is the ArgWriter/ArgReader method: Bool, Int, ..., or Value.
	method string
	// wire is the type the method takes and returns, nil for Value.
	wire jen.Code
	// wireIdent is the identifier wire's rendering refers to.
	wireIdent string
	// convert is true when the parameter's type differs from wire.
	convert bool
}

// codecOf returns the codec of a parameter of type t.
func codecOf(t *manifest.Type) codec {
	_, _, isNamed := named(t)
	k := t.Kind
	switch k {
	case manifest.KindBool:
		return codec{"Bool", jen.Bool(), "bool", isNamed}
	case manifest.KindInt, manifest.KindInt8, manifest.KindInt16, manifest.KindInt32, manifest.KindInt64:
		return codec{"Int", jen.Int64(), "int64", isNamed || k != manifest.KindInt64}
	case manifest.KindUint, manifest.KindUint8, manifest.KindUint16, manifest.KindUint32, manifest.KindUint64:
		return codec{"Uint", jen.Uint64(), "uint64", isNamed || k != manifest.KindUint64}
	case manifest.KindFloat32:
		return codec{"Float32", jen.Float32(), "float32", isNamed}
	case manifest.KindFloat64:
		return codec{"Float64", jen.Float64(), "float64", isNamed}
	case manifest.KindString:
		return codec{"String", jen.String(), "string", isNamed}
	case manifest.KindBytes:
		return codec{"Bytes", jen.Index().Byte(), "byte", isNamed}
	case manifest.KindTime:
		return codec{"Time", jen.Qual("time", "Time"), "", isNamed}
	case manifest.KindDuration:
		return codec{"Duration", jen.Qual("time", "Duration"), "", isNamed}
	}
	return codec{method: "Value"}
}
