// Command expcount counts the exported identifiers of the Go package in a
// directory (non-test files): top-level consts, vars, types and funcs,
// methods of exported types, and the methods of exported interfaces. The
// exported fields of exported struct types are counted separately. It is
// how CHANGELOG.md counts the root package's surface:
//
//	go run ./internal/tools/expcount .
//
// A second argument (any) lists each identifier counted.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: expcount DIR [list]")
		os.Exit(2)
	}
	dir := os.Args[1]
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ids, fields := 0, 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil {
					t := d.Recv.List[0].Type
					for {
						switch x := t.(type) {
						case *ast.StarExpr:
							t = x.X
							continue
						case *ast.IndexExpr:
							t = x.X
							continue
						case *ast.IndexListExpr:
							t = x.X
							continue
						}
						break
					}
					if id, ok := t.(*ast.Ident); !ok || !id.IsExported() {
						continue
					}
				}
				ids++
				if len(os.Args) > 2 {
					fmt.Println("func", d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								ids++
								if len(os.Args) > 2 {
									fmt.Println("val", n.Name)
								}
							}
						}
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						ids++
						if len(os.Args) > 2 {
							fmt.Println("type", s.Name.Name)
						}
						switch t := s.Type.(type) {
						case *ast.StructType:
							for _, fl := range t.Fields.List {
								for _, n := range fl.Names {
									if n.IsExported() {
										fields++
									}
								}
							}
						case *ast.InterfaceType:
							for _, fl := range t.Methods.List {
								for _, n := range fl.Names {
									if n.IsExported() {
										ids++
									}
								}
							}
						}
					}
				}
			}
		}
	}
	fmt.Printf("exported identifiers: %d, exported fields: %d\n", ids, fields)
}
