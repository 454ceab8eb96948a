// Command configdoc regenerates the configuration reference in README.md (between
// the config:begin/config:end markers) from the config structs themselves: key
// paths and env names by reflection, defaults from config.Default(), and the text
// from each field's doc or line comment in the Go source. Run it after adding a
// key: `go run ./internal/configdoc`.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/config"
)

// comments maps "pkgdir.Type.Field" to the field's comment text.
func comments(root string) (map[string]string, error) {
	out := map[string]string{}
	dirs := []string{"config", "ingest", "spool", "tsdb", "registry", "geo", "alerting", "hotspot", "video", "auth"}
	for _, d := range dirs {
		fset := token.NewFileSet()
		names, err := filepath.Glob(filepath.Join(root, d, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				for _, fl := range st.Fields.List {
					text := ""
					if fl.Doc != nil {
						text = fl.Doc.Text()
					}
					if fl.Comment != nil {
						text = strings.TrimSpace(text + " " + fl.Comment.Text())
					}
					text = strings.Join(strings.Fields(text), " ")
					for _, nm := range fl.Names {
						out[d+"."+ts.Name.Name+"."+nm.Name] = text
					}
				}
				return true
			})
		}
	}
	return out, nil
}

type row struct{ path, env, def, doc string }

func walk(v reflect.Value, prefix string, docs map[string]string, out *[]row) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if opts == "inline" {
			walk(fv, prefix, docs, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			walk(fv, p, docs, out)
			continue
		}
		pkg := filepath.Base(t.PkgPath())
		env := config.EnvName(p)
		switch a := f.Tag.Get("env"); a {
		case "":
		case "-":
			env = "— (flag only)"
		default:
			env += ", " + a
		}
		*out = append(*out, row{path: p, env: env, def: show(fv), doc: docs[pkg+"."+t.Name()+"."+f.Name]})
	}
}

func show(v reflect.Value) string {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return "[]"
		}
	}
	s := fmt.Sprint(v.Interface())
	if len(s) > 40 {
		s = s[:37] + "…"
	}
	return s
}

func main() {
	root := "."
	docs, err := comments(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := config.Default()
	var rows []row
	walk(reflect.ValueOf(&c).Elem(), "", docs, &rows)
	var b bytes.Buffer
	b.WriteString("| key | env | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", r.path, r.env, esc(r.def), esc(r.doc))
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		fmt.Fprintln(os.Stderr, "README.md has no config:begin/config:end markers")
		os.Exit(1)
	}
	out := append([]byte{}, readme[:i+len(begin)]...)
	out = append(out, b.Bytes()...)
	out = append(out, readme[j:]...)
	if err := os.WriteFile("README.md", out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("README.md: %d configuration keys\n", len(rows))
}
