package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is one problem in a config file, in the form people read:
// FILE:LINE: key.path: what is wrong and what to do.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
}

// Errors is every problem found in a file, sorted by line.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads, decodes and validates the file. On any problem it returns
// Errors listing all of them.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("cannot read the config: %v", err)}}
	}
	return Parse(file, data)
}

// Parse decodes and validates data as if read from file.
//
// The YAML library panics on some malformed input (fuzzing found a tag on a
// mapping that it decodes as a nil sequence); that is reported as an error
// on the file, so a bad config or reload never takes the daemon down.
func Parse(file string, data []byte) (c *Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, Errors{{File: file, Msg: fmt.Sprintf("the YAML decoder could not read this file (%v); look for unusual tags (!name) or anchors, and write plain YAML", r)}}
		}
	}()
	return parse(file, data)
}

func parse(file string, data []byte) (*Config, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	var errs Errors
	if len(f.Docs) > 0 && f.Docs[0].Body != nil {
		walkUnknown(file, f.Docs[0].Body, reflect.TypeOf(Config{}), "", &errs)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(data, &c); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	c.File = file
	for _, p := range c.validate() {
		errs = append(errs, Error{File: file, Line: lineOf(f, p.path), Key: p.path, Msg: p.msg})
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return &c, nil
}

func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

func yamlError(file string, err error) Error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return Error{File: file, Line: line, Msg: ye.GetMessage() + "; fix the YAML at this line"}
	}
	return Error{File: file, Msg: err.Error()}
}

// walkUnknown reports every mapping key that has no field in t, with its
// line, so that a file with three typos shows three errors.
func walkUnknown(file string, n ast.Node, t reflect.Type, path string, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Duration{}) {
			return
		}
		m, ok := mappingValues(n)
		if !ok {
			return
		}
		fields := yamlFields(t)
		for _, kv := range m {
			key := kv.Key.String()
			ft, ok := fields[key]
			if !ok {
				*errs = append(*errs, Error{File: file, Line: kv.Key.GetToken().Position.Line, Key: join(path, key),
					Msg: fmt.Sprintf("unknown key %q; remove it or check its spelling (known keys: %s)", key, knownKeys(fields))})
				continue
			}
			if msg := typeProblem(kv.Value, ft); msg != "" {
				*errs = append(*errs, Error{File: file, Line: kv.Key.GetToken().Position.Line, Key: join(path, key), Msg: msg})
				continue
			}
			walkUnknown(file, kv.Value, ft, join(path, key), errs)
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return
		}
		for i, v := range seq.Values {
			walkUnknown(file, v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

// typeProblem checks that a value has the shape its key needs (a number,
// true/false, a list, a block of keys), so that the error names the key
// instead of the decoder's Go type names. Tags, anchors and aliases are left
// to the decoder.
func typeProblem(n ast.Node, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	if _, ok := pt.MethodByName("UnmarshalYAML"); ok {
		return "" // a type with its own decoding (Duration, ...) reports its own problems
	}
	if _, ok := pt.MethodByName("UnmarshalText"); ok {
		return ""
	}
	var got string
	switch n.(type) {
	case nil, *ast.NullNode, *ast.TagNode, *ast.AnchorNode, *ast.AliasNode:
		return ""
	case *ast.MappingNode, *ast.MappingValueNode:
		got = "a block of keys"
	case *ast.SequenceNode:
		got = "a list"
	case *ast.IntegerNode:
		got = "a whole number"
	case *ast.BoolNode:
		got = "true/false"
	case *ast.StringNode:
		got = fmt.Sprintf("%q", n.(*ast.StringNode).Value)
	default:
		got = fmt.Sprintf("%q", strings.TrimSpace(n.String()))
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := n.(*ast.IntegerNode); !ok {
			return fmt.Sprintf("%s is not a whole number; write e.g. 10", got)
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			return fmt.Sprintf("%s is not true or false", got)
		}
	case reflect.Slice:
		if _, ok := n.(*ast.SequenceNode); !ok {
			return fmt.Sprintf("%s is not a list; write [a, b] or one \"- item\" per line", got)
		}
	case reflect.Struct:
		if _, ok := mappingValues(n); !ok {
			return fmt.Sprintf("%s is not a block of keys; write key: value lines under it (or {key: value})", got)
		}
	case reflect.String:
		switch n.(type) {
		case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
			return fmt.Sprintf("%s where a single value is needed", got)
		}
	}
	return ""
}

func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		out[tag] = f.Type
	}
	return out
}

func knownKeys(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineOf finds the line of a key path such as services[0].paths[1].name.
// It falls back to the nearest existing parent (a missing key is reported at
// the line of the block that lacks it).
func lineOf(f *ast.File, key string) int {
	for key != "" {
		p, err := yaml.PathString("$." + quotePath(key))
		if err == nil {
			if n, err := p.FilterFile(f); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line
				}
			}
		}
		key = parentPath(key)
	}
	return 0
}

// quotePath quotes path segments that contain '-', which goccy's path syntax
// needs quoted.
func quotePath(key string) string {
	var out []string
	for _, seg := range strings.Split(key, ".") {
		name, idx := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name, idx = seg[:i], seg[i:]
		}
		if strings.ContainsAny(name, "-") {
			name = "'" + name + "'"
		}
		out = append(out, name+idx)
	}
	return strings.Join(out, ".")
}

func parentPath(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}
