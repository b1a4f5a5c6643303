// Package a11y checks the accessible structure of the HTML pages Kinoteka
// serves (the mail catcher's inbox, each service's /docs), so that the tests
// of the packages that render them fail on a regression. It covers what a
// page's markup decides: a language, a title, a viewport, one main landmark,
// one h1 and headings that never skip a level, an accessible name for every
// link, control and frame, table headers with a scope, unique ids and in-page
// links that land. Colour contrast and target sizes depend on the rendering
// and are measured with Lighthouse instead (scripts/lighthouse.sh).
package a11y

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Check parses page and returns every problem it finds, each naming the
// element; none means the page passes.
func Check(page []byte) ([]string, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return nil, err
	}
	var (
		problems []string
		ids      = map[string]int{}
		refs     []string // ids named by href="#…", aria-labelledby and label for=
		labelFor = map[string]bool{}
		headings []int
		count    = map[string]int{}
		controls []*html.Node
	)
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		count[n.Data]++
		if id, ok := attr(n, "id"); ok {
			ids[id]++
		}
		if ref, ok := attr(n, "aria-labelledby"); ok {
			refs = append(refs, strings.Fields(ref)...)
		}
		switch n.Data {
		case "html":
			if lang, _ := attr(n, "lang"); strings.TrimSpace(lang) == "" {
				add("<html> has no lang")
			}
		case "title":
			if text(n) == "" {
				add("<title> is empty")
			}
		case "meta":
			if name, _ := attr(n, "name"); name == "viewport" {
				count["meta viewport"]++
				content, _ := attr(n, "content")
				if !strings.Contains(content, "width=device-width") || strings.Contains(content, "user-scalable=no") {
					add("<meta name=viewport content=%q>: want width=device-width and zoom allowed", content)
				}
			}
		case "h1", "h2", "h3", "h4", "h5", "h6":
			level := int(n.Data[1] - '0')
			if text(n) == "" {
				add("<%s> is empty", n.Data)
			}
			if len(headings) == 0 && level != 1 {
				add("the first heading is <%s> %q, not <h1>", n.Data, text(n))
			}
			if len(headings) > 0 && level > headings[len(headings)-1]+1 {
				add("<%s> %q follows <h%d>: a heading level is skipped", n.Data, text(n), headings[len(headings)-1])
			}
			headings = append(headings, level)
		case "a":
			href, ok := attr(n, "href")
			if !ok {
				add("<a> %q has no href", text(n))
			}
			if !hasName(n) {
				add("<a href=%q> has no text", href)
			}
			if frag, ok := strings.CutPrefix(href, "#"); ok {
				refs = append(refs, frag)
			}
		case "img":
			if _, ok := attr(n, "alt"); !ok {
				add("<img> has no alt")
			}
		case "iframe":
			if title, _ := attr(n, "title"); strings.TrimSpace(title) == "" && !hasLabel(n) {
				add("<iframe> has no title")
			}
		case "th":
			if scope, _ := attr(n, "scope"); scope != "col" && scope != "row" {
				add("<th> %q has no scope=col or scope=row", text(n))
			}
		case "table":
			if !hasDescendant(n, "th") {
				add("<table> has no header cell")
			}
		case "label":
			if f, ok := attr(n, "for"); ok {
				labelFor[f] = true
				refs = append(refs, f)
			}
		case "button":
			if !hasName(n) {
				add("<button> has no text")
			}
		case "input", "select", "textarea":
			if needsLabel(n) {
				controls = append(controls, n)
			}
		}
	}
	// A <label for> may come after its control: checked once all are seen.
	for _, c := range controls {
		if id, _ := attr(c, "id"); id == "" || !labelFor[id] {
			name, _ := attr(c, "name")
			add("<%s name=%q> has no label", c.Data, name)
		}
	}
	if count["meta viewport"] != 1 {
		add("%d <meta name=viewport>, want 1", count["meta viewport"])
	}
	if count["main"] != 1 {
		add("%d <main> landmarks, want 1", count["main"])
	}
	if count["h1"] != 1 {
		add("%d <h1>, want 1", count["h1"])
	}
	if count["title"] != 1 {
		add("%d <title>, want 1", count["title"])
	}
	for id, k := range ids {
		if k > 1 {
			add("id %q is used %d times", id, k)
		}
	}
	for _, ref := range refs {
		if ids[ref] == 0 {
			add("nothing has id %q, which a link or label names", ref)
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems), nil
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// text is the element's text content, spaces collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func hasLabel(n *html.Node) bool {
	l, _ := attr(n, "aria-label")
	by, _ := attr(n, "aria-labelledby")
	return strings.TrimSpace(l) != "" || strings.TrimSpace(by) != ""
}

// hasName: the element's own text (visually hidden text counts, text
// hidden with aria-hidden does not) or an ARIA label.
func hasName(n *html.Node) bool {
	if hasLabel(n) {
		return true
	}
	var visit func(*html.Node) bool
	visit = func(n *html.Node) bool {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.TextNode && strings.TrimSpace(c.Data) != "":
				return true
			case c.Type == html.ElementNode:
				if h, _ := attr(c, "aria-hidden"); h == "true" {
					continue
				}
				if alt, _ := attr(c, "alt"); c.Data == "img" && strings.TrimSpace(alt) != "" {
					return true
				}
				if visit(c) {
					return true
				}
			}
		}
		return false
	}
	return visit(n)
}

// needsLabel: a form control a user fills in, not labelled by ARIA or by
// an enclosing <label>; it still needs a <label for> naming its id.
func needsLabel(n *html.Node) bool {
	t, _ := attr(n, "type")
	v, _ := attr(n, "value")
	switch {
	case n.Data == "input" && t == "hidden",
		n.Data == "input" && (t == "submit" || t == "button" || t == "reset") && strings.TrimSpace(v) != "",
		hasLabel(n), inside(n, "label"):
		return false
	}
	return true
}

func hasDescendant(n *html.Node, tag string) bool {
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			return true
		}
	}
	return false
}

func inside(n *html.Node, tag string) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.Data == tag {
			return true
		}
	}
	return false
}
