// Command codesize prints, for each Go package directory it is given, the lines of non-test
// code and the longest function: the figures a refactor of the reconciler is judged by,
// measured the same way each time (`make codesize`).
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// dirSize is what codesize reports about one directory tree.
type dirSize struct {
	lines       int
	longest     string
	longestSize int
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: codesize DIR...  (non-test lines and longest function per directory tree)")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	fmt.Println("| directory | non-test lines | longest function | its lines |\n|---|---|---|---|")
	for _, dir := range flag.Args() {
		size, err := measure(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "codesize:", err)
			os.Exit(1)
		}
		fmt.Printf("| `%s` | %d | `%s` | %d |\n", dir, size.lines, size.longest, size.longestSize)
	}
}

// measure walks dir for non-test Go files, counting their lines and their functions' spans.
func measure(dir string) (dirSize, error) {
	var out dirSize
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", path, err)
		}
		out.lines += fset.File(file.Pos()).LineCount()
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			span := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if span > out.longestSize {
				out.longestSize, out.longest = span, funcName(fn)
			}
		}
		return nil
	})
	return out, err
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv := fn.Recv.List[0].Type
	if star, ok := recv.(*ast.StarExpr); ok {
		recv = star.X
	}
	if index, ok := recv.(*ast.IndexExpr); ok {
		recv = index.X
	}
	if ident, ok := recv.(*ast.Ident); ok {
		return ident.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
