package architecture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testsSuffix names the node of a package compiled with its tests: its own
// imports plus those of its _test.go files (in-package and external).
const testsSuffix = " (tests)"

// node is one package of the import graph.
type node struct {
	imports []string
	// files says, for our own packages, which files (relative to the
	// module root) import a path, so a violation points at a line to change.
	files map[string][]string
}

// graph is the import graph by package path.
type graph map[string]*node

// listed is the part of `go list -json` output the graph needs.
type listed struct {
	ImportPath string
	Dir        string
	ForTest    string
	Module     *struct{ Path string }
	Error      *struct{ Err string }

	GoFiles, CgoFiles, TestGoFiles, XTestGoFiles []string
	Imports, TestImports, XTestImports           []string
}

// loadGraph lists every package of the module with its tests and every
// package they depend on, standard library included.
func loadGraph(t *testing.T) graph {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}\n{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", stderr(err))
	}
	module, root, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	cmd := exec.Command("go", "list", "-deps", "-test", "-json", "./...")
	cmd.Dir = root
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -test -json ./...: %v", stderr(err))
	}
	g, err := parseList(out, module, root)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func stderr(err error) error {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return fmt.Errorf("%w\n%s", err, ee.Stderr)
	}
	return err
}

// parseList builds the graph from `go list -deps -test -json` output. Test
// variants ("p [p.test]") are left out: the plain entry of p already lists
// its test imports, which become the node "p (tests)".
func parseList(out []byte, module, root string) (graph, error) {
	g := graph{}
	var variants []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if strings.Contains(p.ImportPath, " [") || strings.HasSuffix(p.ImportPath, ".test") {
			variants = append(variants, p)
			continue
		}
		n := &node{imports: plain(p.Imports)}
		g[p.ImportPath] = n
		if p.Module == nil || p.Module.Path != module {
			continue
		}
		var err error
		if n.files, err = importingFiles(root, p.Dir, p.GoFiles, p.CgoFiles); err != nil {
			return nil, err
		}
		tn := &node{imports: union(p.ImportPath, p.Imports, p.TestImports, p.XTestImports)}
		if tn.files, err = importingFiles(root, p.Dir, p.GoFiles, p.CgoFiles, p.TestGoFiles, p.XTestGoFiles); err != nil {
			return nil, err
		}
		g[p.ImportPath+testsSuffix] = tn
	}
	// A package recompiled for some test has no plain entry when only that
	// test needs it; its imports are its own all the same.
	for _, p := range variants {
		base, _, _ := strings.Cut(p.ImportPath, " [")
		if _, ok := g[base]; !ok && base != p.ForTest && base != p.ForTest+"_test" && !strings.HasSuffix(base, ".test") {
			g[base] = &node{imports: plain(p.Imports)}
		}
	}
	return g, nil
}

// plain drops the " [p.test]" that go list adds to recompiled packages.
func plain(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		base, _, _ := strings.Cut(p, " [")
		out = append(out, base)
	}
	return out
}

func union(self string, lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, p := range plain(l) {
			if p != self && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// importingFiles parses the import clauses of a package's files.
func importingFiles(root, dir string, lists ...[]string) (map[string][]string, error) {
	files := map[string][]string{}
	fset := token.NewFileSet()
	for _, l := range lists {
		for _, name := range l {
			path := filepath.Join(dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return nil, err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return nil, err
			}
			for _, imp := range f.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					return nil, err
				}
				files[p] = append(files[p], filepath.ToSlash(rel))
			}
		}
	}
	return files, nil
}

// rule says which packages must not depend, directly or through others, on
// which packages, and why.
type rule struct {
	why    string
	from   []string // the packages bound: paths, or "prefix/..." for a tree
	except []string // packages of from that the rule leaves out
	forbid []string // what they must not reach
	tests  bool     // the packages' tests are bound too
}

// match reports whether path is one of patterns ("a/b" or "a/b/..." for a/b
// and everything under it).
func match(patterns []string, path string) bool {
	for _, p := range patterns {
		if tree, ok := strings.CutSuffix(p, "/..."); ok {
			if path == tree || strings.HasPrefix(path, tree+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}

func (r rule) binds(pkg string) bool { return match(r.from, pkg) && !match(r.except, pkg) }

// check returns one message per package and forbidden dependency, naming
// the chain of imports that makes it.
func check(g graph, rules []rule) []string {
	var out []string
	pkgs := slices.Sorted(maps.Keys(g))
	for _, r := range rules {
		for _, pkg := range pkgs {
			if strings.HasSuffix(pkg, testsSuffix) || !r.binds(pkg) {
				continue
			}
			reported := map[string]bool{}
			starts := []string{pkg}
			if _, ok := g[pkg+testsSuffix]; ok && r.tests {
				starts = append(starts, pkg+testsSuffix)
			}
			for _, start := range starts {
				for _, chain := range g.reach(start, func(p string) bool { return match(r.forbid, p) }) {
					if target := chain[len(chain)-1]; !reported[target] {
						reported[target] = true
						out = append(out, g.describe(chain, r.why))
					}
				}
			}
		}
	}
	return out
}

// reach returns, for every forbidden package reachable from start, the
// shortest chain of imports start → … → that package. It does not look
// past a forbidden package: the first one on a path is the one to remove.
func (g graph) reach(start string, forbidden func(string) bool) [][]string {
	parent := map[string]string{start: ""}
	queue := []string{start}
	var hits []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		n := g[p]
		if n == nil {
			continue
		}
		for _, imp := range n.imports {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = p
			if forbidden(imp) {
				hits = append(hits, imp)
				continue
			}
			queue = append(queue, imp)
		}
	}
	slices.Sort(hits)
	chains := make([][]string, 0, len(hits))
	for _, h := range hits {
		chain := []string{h}
		for p := parent[h]; p != ""; p = parent[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		chains = append(chains, chain)
	}
	return chains
}

// describe says "a imports c (why):" and then each hop with its files.
func (g graph) describe(chain []string, why string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s imports %s (%s):", chain[0], chain[len(chain)-1], why)
	for i := 0; i+1 < len(chain); i++ {
		from, to := chain[i], chain[i+1]
		where := strings.TrimSuffix(from, testsSuffix)
		if files := g[from].files[to]; len(files) > 0 {
			where = strings.Join(files, ", ")
		}
		fmt.Fprintf(&b, "\n\t%s imports %s", where, to)
	}
	return b.String()
}

// unknown returns the packages of ours that the rules name but the graph
// lacks: a renamed package would otherwise leave its rule holding nothing.
// planned packages may be named before they exist.
func unknown(g graph, rules []rule, module string, planned []string) []string {
	var out []string
	for _, r := range rules {
		for _, p := range slices.Concat(r.from, r.except, r.forbid) {
			base := strings.TrimSuffix(p, "/...")
			if !strings.HasPrefix(base+"/", module+"/") || slices.Contains(planned, base) || slices.Contains(out, p) {
				continue
			}
			if !slices.ContainsFunc(slices.Collect(maps.Keys(g)), func(pkg string) bool { return match([]string{p}, pkg) }) {
				out = append(out, p)
			}
		}
	}
	return out
}
