package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The catalogue pages: the list with search, filters, sort and paging by
// films' cursor; a film with its reviews; and for a signed-in person the
// favourite toggle, their own review, and the favourites page.

const pageSize = 20

// sorts are the catalogue's sort orders, as films names them, in the order
// the select offers them.
var sorts = []string{"id", "title", "-year", "year", "-rating", "-reviews"}

// filmItem is a film as the lists show it.
type filmItem struct {
	ID    int64
	Title string
	Year  int
	Genre string
	IMDB  string
	Ours  string
}

func (a *app) filmItems(lang string, fs []film) []filmItem {
	out := make([]filmItem, 0, len(fs))
	for _, f := range fs {
		it := filmItem{ID: f.ID, Title: f.Title, Year: f.Year}
		if f.Genre != nil {
			it.Genre = *f.Genre
		}
		if f.IMDBRating != nil {
			it.IMDB = translate(lang, "catalogue.imdb", *f.IMDBRating)
		}
		if f.AverageRating != nil {
			it.Ours = translate(lang, "film.ours_value", *f.AverageRating, f.ReviewCount)
		}
		out = append(out, it)
	}
	return out
}

// cataloguePage is the content of the catalogue template.
type cataloguePage struct {
	Q, YearFrom, YearTo string
	Genres              []option
	Sorts               []option
	Films               []filmItem
	Next, First         string
	Error               string
}

func (a *app) handleCatalogue(w http.ResponseWriter, r *http.Request) {
	u, _ := a.currentUser(w, r, false)
	lang := language(r)
	q := r.URL.Query()
	p := cataloguePage{Q: q.Get("q"), YearFrom: q.Get("year_from"), YearTo: q.Get("year_to")}
	params := url.Values{}
	for _, k := range []string{"q", "genre", "year_from", "year_to"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			params.Set(k, v)
		}
	}
	sort := q.Get("sort")
	if sort != "" && sort != "id" {
		params.Set("sort", sort)
	}
	for _, s := range sorts {
		p.Sorts = append(p.Sorts, option{Value: s, Label: translate(lang, "sort."+s), Selected: s == sort || (sort == "" && s == "id")})
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var genres struct{ Items []genre }
	if err := a.api.films(ctx, r, http.MethodGet, "/v1/genres", "", nil, &genres); err != nil {
		a.fail(w, r, u, err)
		return
	}
	p.Genres = append(p.Genres, option{Value: "", Label: translate(lang, "catalogue.anygenre")})
	for _, g := range genres.Items {
		p.Genres = append(p.Genres, option{Value: g.Name, Label: fmt.Sprintf("%s (%d)", g.Name, g.FilmCount), Selected: g.Name == q.Get("genre")})
	}
	filter := params.Encode()
	api := url.Values{}
	for k, v := range params {
		api[k] = v
	}
	api.Set("limit", strconv.Itoa(pageSize))
	if c := q.Get("cursor"); c != "" {
		api.Set("cursor", c)
		p.First = "/?" + filter
	}
	var list filmPage
	err := a.api.films(ctx, r, http.MethodGet, "/v1/films?"+api.Encode(), "", nil, &list)
	switch {
	case statusOf(err) == http.StatusBadRequest:
		// A filter films refuses (a year of letters, a stale cursor): say
		// so above the form instead of failing the page.
		var ae *apiError
		if e, ok := err.(*apiError); ok {
			ae = e
		}
		p.Error = translate(lang, "error.generic", fieldList(ae))
	case err != nil:
		a.fail(w, r, u, err)
		return
	}
	p.Films = a.filmItems(lang, list.Items)
	if list.NextCursor != nil {
		next := url.Values{}
		for k, v := range params {
			next[k] = v
		}
		next.Set("cursor", *list.NextCursor)
		p.Next = "/?" + next.Encode()
	}
	a.render(w, r, http.StatusOK, "catalogue", &page{Title: translate(lang, "catalogue.title"), User: u, Data: p})
}

// fieldList is an API refusal as one line.
func fieldList(ae *apiError) string {
	if ae == nil {
		return ""
	}
	if len(ae.Fields) == 0 {
		return ae.Detail
	}
	var parts []string
	for _, f := range ae.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return strings.Join(parts, "; ")
}

// filmView is the content of the film template.
type filmView struct {
	Film       film
	Facts      []fact
	Reviews    []reviewItem
	NextReview string
	Favourite  bool
	FavForm    *form
	Review     *form
	HasReview  bool
	DeleteForm *form
	SignInHref string
}

type fact struct{ Term, Value string }

type reviewItem struct {
	Mine   bool
	Author string
	Rating string
	Text   string
	Date   string
}

func (a *app) filmFacts(lang string, f film) []fact {
	unknown := translate(lang, "film.unknown")
	str := func(p *string) string {
		if p == nil || *p == "" {
			return unknown
		}
		return *p
	}
	facts := []fact{
		{translate(lang, "film.year"), strconv.Itoa(f.Year)},
		{translate(lang, "film.genre"), str(f.Genre)},
		{translate(lang, "film.director"), str(f.Director)},
	}
	runtime := unknown
	if f.RuntimeMin != nil {
		runtime = translate(lang, "film.runtime_min", *f.RuntimeMin)
	}
	facts = append(facts, fact{translate(lang, "film.runtime"), runtime})
	if f.MPAARating != nil && *f.MPAARating != "" {
		facts = append(facts, fact{translate(lang, "film.mpaa"), *f.MPAARating})
	}
	imdb := unknown
	if f.IMDBRating != nil {
		imdb = strconv.FormatFloat(*f.IMDBRating, 'f', 1, 64) + " / 10"
	}
	ours := translate(lang, "film.ours_none")
	if f.AverageRating != nil {
		ours = translate(lang, "film.ours_value", *f.AverageRating, f.ReviewCount)
	}
	return append(facts, fact{translate(lang, "film.imdb"), imdb}, fact{translate(lang, "film.ours"), ours})
}

// filmID is the {id} of the path, or errNotFound.
func filmID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errNotFound
	}
	return id, nil
}

func (a *app) handleFilm(w http.ResponseWriter, r *http.Request) {
	a.filmPage(w, r, http.StatusOK, nil)
}

// filmPage renders a film; review, when non-nil, is the review form shown
// again with its errors.
func (a *app) filmPage(w http.ResponseWriter, r *http.Request, status int, review *form) {
	u, _ := a.currentUser(w, r, false)
	lang := language(r)
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var f film
	if err := a.api.films(ctx, r, http.MethodGet, "/v1/films/"+strconv.FormatInt(id, 10), "", nil, &f); err != nil {
		a.fail(w, r, u, err)
		return
	}
	v := filmView{Film: f, Facts: a.filmFacts(lang, f)}
	path := "/films/" + strconv.FormatInt(id, 10)

	rq := url.Values{"limit": {"10"}}
	if c := r.URL.Query().Get("reviews"); c != "" {
		rq.Set("cursor", c)
	}
	var reviews reviewPage
	if err := a.api.films(ctx, r, http.MethodGet, "/v1"+path+"/reviews?"+rq.Encode(), "", nil, &reviews); err != nil && statusOf(err) != http.StatusBadRequest {
		a.fail(w, r, u, err)
		return
	}
	for _, rv := range reviews.Items {
		v.Reviews = append(v.Reviews, reviewItem{Mine: u != nil && rv.UserID == u.ID, Author: rv.Author.Name, Rating: translate(lang, "film.rated", rv.Rating), Text: rv.Text, Date: rv.UpdatedAt.Format("2006-01-02")})
	}
	if reviews.NextCursor != nil {
		v.NextReview = path + "?reviews=" + url.QueryEscape(*reviews.NextCursor) + "#reviews"
	}

	if u == nil {
		v.SignInHref = "/signin?next=" + url.QueryEscape(path)
	} else {
		fav, err := a.isFavourite(ctx, r, u, id)
		if err != nil {
			a.fail(w, r, u, err)
			return
		}
		v.Favourite = fav
		on, label := "1", translate(lang, "button.fav_add")
		if fav {
			on, label = "0", translate(lang, "button.fav_remove")
		}
		v.FavForm = &form{Action: path + "/favourite", Submit: label, Hidden: []hidden{{"on", on}}}
		mine, err := a.ownReview(ctx, r, u, id)
		if err != nil {
			a.fail(w, r, u, err)
			return
		}
		if review == nil {
			review = a.reviewForm(lang, path, mine)
		}
		v.Review = review
		if mine != nil {
			v.HasReview = true
			v.DeleteForm = &form{Action: path + "/review/delete", Submit: translate(lang, "button.review_del"), Class: "secondary"}
		}
	}
	a.render(w, r, status, "film", &page{Title: f.Title, User: u, Data: v})
}

func (a *app) reviewForm(lang, path string, mine *review) *form {
	f := &form{Action: path + "/review", Submit: translate(lang, "button.review_post"), Fields: []*field{
		{Name: "rating", Type: "number", Label: translate(lang, "film.rating"), Min: "1", Max: "10", InputMode: "numeric", Required: true},
		{Name: "text", Type: "textarea", Label: translate(lang, "film.text"), MaxLength: 5000},
	}}
	if mine != nil {
		f.Submit = translate(lang, "button.review_save")
		f.Fields[0].Value = strconv.Itoa(mine.Rating)
		f.Fields[1].Value = mine.Text
	}
	return f
}

// isFavourite asks films whether film id is among the person's favourites
// (204 yes, 404 no).
func (a *app) isFavourite(ctx context.Context, r *http.Request, u *user, id int64) (bool, error) {
	err := a.api.films(ctx, r, http.MethodGet, "/v1/me/favorites/"+strconv.FormatInt(id, 10), u.bearer(), nil, nil)
	switch {
	case err == nil:
		return true, nil
	case statusOf(err) == http.StatusNotFound:
		return false, nil
	}
	return false, err
}

// ownReview is the person's review of film id, or nil when they have
// written none.
func (a *app) ownReview(ctx context.Context, r *http.Request, u *user, id int64) (*review, error) {
	var rv review
	err := a.api.films(ctx, r, http.MethodGet, "/v1/films/"+strconv.FormatInt(id, 10)+"/reviews/me", u.bearer(), nil, &rv)
	switch {
	case err == nil:
		return &rv, nil
	case codeOf(err) == "review_not_found":
		return nil, nil
	}
	return nil, err
}

func (a *app) handleFavourite(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	method, flash := http.MethodPut, "fav_added"
	if r.PostFormValue("on") == "0" {
		method, flash = http.MethodDelete, "fav_removed"
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	path := "/films/" + strconv.FormatInt(id, 10)
	if err := a.api.films(ctx, r, method, "/v1/me/favorites/"+strconv.FormatInt(id, 10), u.bearer(), nil, nil); err != nil {
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, withFlash(path, flash))
}

func (a *app) handleReview(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	lang := language(r)
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	path := "/films/" + strconv.FormatInt(id, 10)
	f := a.reviewForm(lang, path, nil)
	f.fill(r)
	rating, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("rating")))
	if err != nil || rating < 1 || rating > 10 {
		f.Fields[0].Error = translate(lang, "error.rating")
		f.Error = translate(lang, "error.form")
		a.filmPage(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	err = a.api.films(ctx, r, http.MethodPut, "/v1/films/"+strconv.FormatInt(id, 10)+"/reviews/me", u.bearer(),
		map[string]any{"rating": rating, "text": r.PostFormValue("text")}, nil)
	if err != nil {
		if f.apply(lang, err, nil) {
			a.filmPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, withFlash(path+"#your-review", "review_saved"))
}

func (a *app) handleReviewDelete(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	path := "/films/" + strconv.FormatInt(id, 10)
	if err := a.api.films(ctx, r, http.MethodDelete, "/v1"+path+"/reviews/me", u.bearer(), nil, nil); err != nil {
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, withFlash(path, "review_deleted"))
}

// favouritesPage is the content of the favourites template.
type favouritesPage struct {
	Films       []filmItem
	Next, First string
}

func (a *app) handleFavourites(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	lang := language(r)
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	var p favouritesPage
	if c := r.URL.Query().Get("cursor"); c != "" {
		q.Set("cursor", c)
		p.First = "/favourites"
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var list filmPage
	if err := a.api.films(ctx, r, http.MethodGet, "/v1/me/favorites?"+q.Encode(), u.bearer(), nil, &list); err != nil {
		a.fail(w, r, u, err)
		return
	}
	p.Films = a.filmItems(lang, list.Items)
	if list.NextCursor != nil {
		p.Next = "/favourites?cursor=" + url.QueryEscape(*list.NextCursor)
	}
	a.render(w, r, http.StatusOK, "favourites", &page{Title: translate(lang, "favourites.title"), User: u, Data: p})
}
