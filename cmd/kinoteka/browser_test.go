package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The journey of a person in a real browser (Chromium, headless) against the
// whole embedded system: find a film, sign up with the code from the mail,
// stay signed in across a reload, favourite it, review it, sign out; and an
// admin adding a film. Controls are found as a person finds them: by their
// label, their role and the words on them.
//
// It runs when a Chromium is found: KINOTEKA_TEST_CHROME names one, else
// chromium, chromium-browser, google-chrome or chrome on PATH. With
// KINOTEKA_TEST_SCREENSHOTS=DIR it saves a picture of each step there.

func findChrome(t *testing.T) string {
	if p := os.Getenv("KINOTEKA_TEST_CHROME"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KINOTEKA_TEST_CHROME=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: set KINOTEKA_TEST_CHROME to its path, or put chromium on PATH (apt-get install chromium)")
	return ""
}

// tab is one browser tab driven step by step.
type tab struct {
	t        *testing.T
	ctx      context.Context
	shots    string
	step     int
	mu       sync.Mutex
	problems []string // console errors and CSP violations
}

func newTab(t *testing.T) *tab {
	chrome := findChrome(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1100, 760),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	tb := &tab{t: t, ctx: ctx, shots: os.Getenv("KINOTEKA_TEST_SCREENSHOTS")}
	if tb.shots != "" {
		if err := os.MkdirAll(tb.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == "error" || m.Type == chromedp.ConsoleException {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.Text)
				tb.mu.Unlock()
			}
		}
	}()
	return tb
}

// do runs actions; what names the step in a failure and the screenshot.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	tb.shot(what)
}

// submit clicks a control that loads a new page and waits for it.
func (tb *tab) submit(what string, click chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if _, err := chromedp.RunResponse(tb.ctx, click); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) shot(what string) {
	if tb.shots == "" {
		return
	}
	tb.step++
	b, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot()) // the viewport, PNG
	if err != nil {
		tb.t.Logf("screenshot %s: %v", what, err)
		return
	}
	name := fmt.Sprintf("%02d-%s.png", tb.step, strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(what), "-"), "-"))
	if err := os.WriteFile(filepath.Join(tb.shots, name), b, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.Search(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) noProblems() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		tb.t.Errorf("browser console: %s", p)
	}
}

// XPath selectors by what a person sees: a control by its label, a button
// or link by its words, a heading by its text.
func field(label string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[@id=//label[normalize-space()=%q]/@for]`, label))
}
func button(words string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space()=%q]`, words))
}
func linkTo(words string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//a[normalize-space()=%q]`, words))
}
func heading(prefix string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//h1[starts-with(normalize-space(), %q)]`, prefix))
}
func saying(words string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[contains(normalize-space(text()), %q)]`, words))
}

// codeFromCatcher reads the newest mail to addr through the catcher's
// Mailpit-compatible API, as a test against Mailpit would.
func codeFromCatcher(t *testing.T, mailURL, addr string) string {
	t.Helper()
	get := func(u string, v any) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", u, err, b)
		}
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var list struct {
			Messages []struct {
				ID string
				To []struct{ Address string }
			}
		}
		get(mailURL+"/api/v1/messages?limit=50", &list)
		for _, m := range list.Messages {
			if len(m.To) == 1 && strings.EqualFold(m.To[0].Address, addr) {
				var msg struct{ Text string }
				get(mailURL+"/api/v1/message/"+m.ID, &msg)
				if code := regexp.MustCompile(`\b\d{6}\b`).FindString(msg.Text); code != "" {
					return code
				}
			}
		}
	}
	t.Fatalf("no mail to %s", addr)
	return ""
}

func TestBrowserJourney(t *testing.T) {
	b := newTab(t)
	s, env, _ := runSystem(t)
	site := s.webURL()
	const email, password = "journey@example.com", "correct horse battery"

	b.do("catalogue", chromedp.Navigate(site), chromedp.WaitVisible(heading("Films")))
	// The search box is the page's searchbox; Enter submits it.
	b.submit("search", chromedp.SendKeys(chromedp.Search(`//input[@type="search"]`), "star wars\r"))
	b.do("search results", chromedp.WaitVisible(chromedp.Search(`//main//a[starts-with(normalize-space(), "Star Wars")]`)))
	b.submit("open the film", chromedp.Click(chromedp.Search(`//main//a[starts-with(normalize-space(), "Star Wars")]`)))
	b.do("film page", chromedp.WaitVisible(heading("Star Wars")), chromedp.WaitVisible(saying("IMDb rating")))
	filmURL, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	title := b.text(`//h1`)

	b.submit("to sign up", chromedp.Click(linkTo("Sign up")))
	b.do("sign-up form",
		chromedp.WaitVisible(heading("Sign up")),
		chromedp.SendKeys(field("Email address"), email),
		chromedp.SendKeys(field("Password"), password))
	b.submit("sign up", chromedp.Click(button("Sign up")))
	b.do("code page", chromedp.WaitVisible(heading("Enter the code")), chromedp.WaitVisible(linkTo("Open the mail inbox")))

	code := codeFromCatcher(t, env.MailURL, email)
	b.do("enter the code", chromedp.SendKeys(field("6-digit code"), code), chromedp.SendKeys(field("Password"), password))
	b.submit("verify", chromedp.Click(button("Verify")))
	b.do("signed in", chromedp.WaitVisible(saying("Your address is confirmed")), chromedp.WaitVisible(button("Sign out")))
	b.submit("reload", chromedp.Reload())
	b.do("still signed in after a reload", chromedp.WaitVisible(button("Sign out")), chromedp.WaitVisible(linkTo("Favourites")))

	b.submit("back to the film", chromedp.Navigate(filmURL))
	b.submit("favourite", chromedp.Click(button("Add to favourites")))
	b.do("favourited", chromedp.WaitVisible(button("Remove from favourites")))
	b.submit("to favourites", chromedp.Click(linkTo("Favourites")))
	b.do("favourites page", chromedp.WaitVisible(heading("Your favourites")), chromedp.WaitVisible(linkTo(title)))

	b.submit("back to the film again", chromedp.Click(linkTo(title)))
	b.do("write a review",
		chromedp.WaitVisible(heading("Star Wars")),
		chromedp.SendKeys(field("Rating from 1 to 10"), "9"),
		chromedp.SendKeys(field("Review (optional)"), "Still the best space opera."))
	b.submit("post the review", chromedp.Click(button("Post review")))
	b.do("review posted",
		chromedp.WaitVisible(saying("Your review is saved")),
		chromedp.WaitVisible(saying("9.0 / 10 from 1 reviews")),
		chromedp.WaitVisible(saying("Still the best space opera.")))

	// A display name reaches films through the users topic: the review
	// shows it once films has followed (soon, not at once).
	b.submit("to the account", chromedp.Click(linkTo("Account")))
	b.do("name the account", chromedp.WaitVisible(heading("Your account")), chromedp.SendKeys(field("Display name"), "Journey Person"))
	b.submit("save the name", chromedp.Click(button("Save name")))
	b.do("name saved", chromedp.WaitVisible(saying("Your name is saved")))
	waitFor(t, "the new name on the review", func() bool {
		b.submit("the film again", chromedp.Navigate(filmURL))
		return strings.Contains(b.text(`//section[@aria-labelledby="reviews"]`), "Journey Person (you)")
	})

	// Script cannot see the session: the cookie is HttpOnly.
	cookies, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, "kinoteka_session") {
		t.Errorf("script reads the session cookie: %q", cookies)
	}

	b.submit("sign out", chromedp.Click(button("Sign out")))
	b.do("signed out", chromedp.WaitVisible(saying("You are signed out")), chromedp.WaitVisible(linkTo("Sign in")))

	// An admin adds a film. The role is granted with the admin tool and is
	// in the next token, so the person signs in again.
	db := "sqlite:" + filepath.Join(s.cfg.DataDir, "auth.db")
	if err := runAdmin(context.Background(), []string{"grant-role", "-db", db, email, "admin"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	b.submit("to sign in", chromedp.Click(linkTo("Sign in")))
	b.do("sign-in form",
		chromedp.WaitVisible(heading("Sign in")),
		chromedp.SendKeys(field("Email address"), email),
		chromedp.SendKeys(field("Password"), password))
	b.submit("sign in", chromedp.Click(button("Sign in")))
	b.submit("to admin", chromedp.Click(linkTo("Admin")))
	b.do("add a film",
		chromedp.WaitVisible(heading("Admin")),
		chromedp.SendKeys(field("Title"), "The Gopher Strikes Back"),
		chromedp.SendKeys(field("Year"), "2026"),
		chromedp.SendKeys(field("Director"), "A. Gopher"))
	b.submit("add the film", chromedp.Click(button("Add film")))
	b.do("film added", chromedp.WaitVisible(heading("The Gopher Strikes Back")), chromedp.WaitVisible(saying("The film is added")))

	b.noProblems()
}
