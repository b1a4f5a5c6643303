package a11y

import (
	"strings"
	"testing"
)

const good = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Good</title></head><body>
<header><h1>Good</h1></header>
<nav aria-labelledby="toc"><h2 id="toc">Contents</h2><a href="#part">Part</a></nav>
<main><h2 id="part">Part</h2><h3>Detail</h3><h2>Next</h2>
<a href="/x"><span aria-hidden="true">&larr; </span>Back</a>
<a href="/y"><span class="vh">Unread: </span></a>
<table><tr><th scope="col">a</th></tr><tr><td>1</td></tr></table>
<iframe title="Body" srcdoc="x"></iframe><img src="data:," alt="">
<label>Name <input name="n"></label><input id="e" name="e"><label for="e">Email</label>
<input aria-label="Search" name="q"><input type="hidden" name="h"><input type="submit" value="Send">
<select aria-labelledby="toc"></select><button>Go</button>
</main></body></html>`

func TestGoodPagePasses(t *testing.T) {
	problems, err := Check([]byte(good))
	if err != nil || len(problems) != 0 {
		t.Fatalf("problems in a good page: %v %q", err, problems)
	}
}

// Each breakage of the good page is reported, naming what is wrong.
func TestEachProblemIsFound(t *testing.T) {
	for _, tt := range []struct {
		name, old, new, want string
	}{
		{"no lang", `<html lang="en">`, `<html>`, "<html> has no lang"},
		{"empty title", `<title>Good</title>`, `<title> </title>`, "<title> is empty"},
		{"no title", `<title>Good</title>`, ``, "0 <title>"},
		{"no viewport", `<meta name="viewport" content="width=device-width, initial-scale=1">`, ``, "0 <meta name=viewport>"},
		{"no zoom", `initial-scale=1"`, `initial-scale=1, user-scalable=no"`, "zoom allowed"},
		{"no main", `<main>`, `<div>`, "0 <main>"},
		{"two mains", `</main>`, `</main><main></main>`, "2 <main>"},
		{"no h1", `<h1>Good</h1>`, ``, "0 <h1>"},
		{"first heading not h1", `<h1>Good</h1>`, `<h2>Good</h2>`, "the first heading is <h2>"},
		{"skipped level", `<h3>Detail</h3>`, `<h4>Detail</h4>`, `<h4> "Detail" follows <h2>`},
		{"empty heading", `<h3>Detail</h3>`, `<h3> </h3>`, "<h3> is empty"},
		{"link without text", `<span class="vh">Unread: </span>`, ``, `<a href="/y"> has no text`},
		{"link with hidden text only", `&larr; </span>Back`, `&larr; Back</span>`, `<a href="/x"> has no text`},
		{"link without href", `<a href="/x">`, `<a>`, "has no href"},
		{"dangling fragment", `href="#part"`, `href="#gone"`, `nothing has id "gone"`},
		{"dangling labelledby", `aria-labelledby="toc"></select>`, `aria-labelledby="nope"></select>`, `nothing has id "nope"`},
		{"duplicate id", `<h2 id="part">`, `<h2 id="toc">`, `id "toc" is used 2 times`},
		{"th without scope", `<th scope="col">`, `<th>`, `<th> "a" has no scope`},
		{"table without headers", `<th scope="col">a</th>`, `<td>a</td>`, "<table> has no header cell"},
		{"iframe without title", `<iframe title="Body"`, `<iframe`, "<iframe> has no title"},
		{"img without alt", `alt=""`, ``, "<img> has no alt"},
		{"input without label", `<input id="e" name="e">`, `<input name="e">`, `<input name="e"> has no label`},
		{"label for another id", `<label for="e">`, `<label for="f">`, `<input name="e"> has no label`},
		{"submit without value", `<input type="submit" value="Send">`, `<input type="submit" name="s">`, `<input name="s"> has no label`},
		{"button without text", `<button>Go</button>`, `<button></button>`, "<button> has no text"},
	} {
		page := strings.Replace(good, tt.old, tt.new, 1)
		if page == good {
			t.Fatalf("%s: %q is not in the good page", tt.name, tt.old)
		}
		problems, err := Check([]byte(page))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
			t.Errorf("%s: problems %q, want one with %q", tt.name, problems, tt.want)
		}
	}
}
