package web

import (
	"net/http"
	"strconv"
	"strings"
)

// The admin pages, for the role admin only: add a film, edit or delete one,
// add a genre. Others get 403 here and never see a link to them; films
// checks the role again on every write.

// admin is signedIn for admins: anyone else gets the 403 page.
func (a *app) admin(w http.ResponseWriter, r *http.Request) (*user, bool) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return nil, false
	}
	if !u.Admin() {
		a.fail(w, r, u, errForbidden)
		return nil, false
	}
	return u, true
}

// filmForm is a film's form, its fields named as films names them.
func (a *app) filmForm(lang, action, submit string, genres []genre) *form {
	opts := []option{{Value: "", Label: translate(lang, "field.no_genre")}}
	for _, g := range genres {
		opts = append(opts, option{Value: g.Name, Label: g.Name})
	}
	return &form{Action: action, Submit: submit, Fields: []*field{
		{Name: "title", Type: "text", Label: translate(lang, "field.title"), Required: true, MaxLength: 300},
		{Name: "year", Type: "number", Label: translate(lang, "field.year"), Required: true, Min: "1870", Max: "2100", InputMode: "numeric"},
		{Name: "genre", Type: "select", Label: translate(lang, "field.genre"), Options: opts},
		{Name: "director", Type: "text", Label: translate(lang, "field.director"), MaxLength: 300},
		{Name: "runtime_min", Type: "number", Label: translate(lang, "field.runtime"), Min: "1", Max: "1000", InputMode: "numeric"},
		{Name: "imdb_rating", Type: "number", Label: translate(lang, "field.imdb"), Min: "1", Max: "10"},
		{Name: "release_date", Type: "date", Label: translate(lang, "field.release")},
		{Name: "mpaa_rating", Type: "text", Label: translate(lang, "field.mpaa"), MaxLength: 10},
	}}
}

// filmBody turns the posted film form into films' JSON: an empty optional
// field is null (cleared), numbers are numbers. ok is false when a number
// does not parse; the field then carries the error.
func filmBody(lang string, f *form) (map[string]any, bool) {
	body := map[string]any{}
	ok := true
	for _, fl := range f.Fields {
		v := strings.TrimSpace(fl.Value)
		switch {
		case v == "" && fl.Required:
			fl.Error = fieldMessage(lang, "is required")
			ok = false
		case v == "":
			body[fl.Name] = nil
		case fl.Name == "imdb_rating":
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				fl.Error, ok = translate(lang, "error.number"), false
			}
			body[fl.Name] = n
		case fl.Type == "number":
			n, err := strconv.Atoi(v)
			if err != nil {
				fl.Error, ok = translate(lang, "error.number"), false
			}
			body[fl.Name] = n
		default:
			body[fl.Name] = v
		}
	}
	if !ok {
		f.Error = translate(lang, "error.form")
	}
	return body, ok
}

// adminPage is the content of the admin template.
type adminPage struct {
	Film, Genre *form
}

func (a *app) genreForm(lang string) *form {
	return &form{Action: "/admin/genres", Submit: translate(lang, "button.genre_add"), Fields: []*field{
		{Name: "name", Type: "text", Label: translate(lang, "field.genre_name"), Required: true, MaxLength: 100},
	}}
}

func (a *app) genres(r *http.Request) ([]genre, error) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	var g struct{ Items []genre }
	err := a.api.films(ctx, r, http.MethodGet, "/v1/genres", "", nil, &g)
	return g.Items, err
}

func (a *app) adminPage(w http.ResponseWriter, r *http.Request, u *user, status int, film, genreF *form) {
	lang := language(r)
	if film == nil {
		gs, err := a.genres(r)
		if err != nil {
			a.fail(w, r, u, err)
			return
		}
		film = a.filmForm(lang, "/admin/films", translate(lang, "button.film_add"), gs)
	}
	if genreF == nil {
		genreF = a.genreForm(lang)
	}
	a.render(w, r, status, "admin", &page{Title: translate(lang, "admin.title"), User: u, Data: adminPage{Film: film, Genre: genreF}})
}

func (a *app) handleAdmin(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	a.adminPage(w, r, u, http.StatusOK, nil, nil)
}

func (a *app) handleFilmCreate(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	lang := language(r)
	gs, err := a.genres(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	f := a.filmForm(lang, "/admin/films", translate(lang, "button.film_add"), gs)
	f.fill(r)
	body, valid := filmBody(lang, f)
	if !valid {
		a.adminPage(w, r, u, http.StatusUnprocessableEntity, f, nil)
		return
	}
	for k, v := range body {
		if v == nil {
			delete(body, k) // a new film has nothing to clear
		}
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var created film
	if err := a.api.films(ctx, r, http.MethodPost, "/v1/films", u.bearer(), body, &created); err != nil {
		if f.apply(lang, err, nil) {
			a.adminPage(w, r, u, http.StatusUnprocessableEntity, f, nil)
			return
		}
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, withFlash("/films/"+strconv.FormatInt(created.ID, 10), "film_added"))
}

func (a *app) handleGenreCreate(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	lang := language(r)
	f := a.genreForm(lang)
	f.fill(r)
	ctx, cancel := a.ctx(r)
	defer cancel()
	if err := a.api.films(ctx, r, http.MethodPost, "/v1/genres", u.bearer(), map[string]string{"name": strings.TrimSpace(r.PostFormValue("name"))}, nil); err != nil {
		if f.apply(lang, err, nil) {
			a.adminPage(w, r, u, http.StatusUnprocessableEntity, nil, f)
			return
		}
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, "/admin?m=genre_added")
}

// adminFilmPage is the content of the admin_film template.
type adminFilmPage struct {
	Film   film
	Form   *form
	Delete *form
}

func (a *app) handleFilmEditPage(w http.ResponseWriter, r *http.Request) {
	a.filmEditPage(w, r, http.StatusOK, nil)
}

func (a *app) filmEditPage(w http.ResponseWriter, r *http.Request, status int, f *form) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	lang := language(r)
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	path := "/admin/films/" + strconv.FormatInt(id, 10)
	var fm film
	if err := a.api.films(ctx, r, http.MethodGet, "/v1/films/"+strconv.FormatInt(id, 10), "", nil, &fm); err != nil {
		a.fail(w, r, u, err)
		return
	}
	if f == nil {
		gs, err := a.genres(r)
		if err != nil {
			a.fail(w, r, u, err)
			return
		}
		f = a.filmForm(lang, path, translate(lang, "button.film_save"), gs)
		set := func(name, v string) {
			fl := f.field(name)
			fl.Value = v
			for i := range fl.Options {
				fl.Options[i].Selected = fl.Options[i].Value == v
			}
		}
		set("title", fm.Title)
		set("year", strconv.Itoa(fm.Year))
		if fm.Genre != nil {
			set("genre", *fm.Genre)
		}
		if fm.Director != nil {
			set("director", *fm.Director)
		}
		if fm.RuntimeMin != nil {
			set("runtime_min", strconv.Itoa(*fm.RuntimeMin))
		}
		if fm.IMDBRating != nil {
			set("imdb_rating", strconv.FormatFloat(*fm.IMDBRating, 'f', -1, 64))
		}
		if fm.ReleaseDate != nil {
			set("release_date", *fm.ReleaseDate)
		}
		if fm.MPAARating != nil {
			set("mpaa_rating", *fm.MPAARating)
		}
	}
	a.render(w, r, status, "admin_film", &page{Title: translate(lang, "admin.edit_title", fm.Title), User: u, Data: adminFilmPage{
		Film: fm, Form: f,
		Delete: &form{Action: path + "/delete", Submit: translate(lang, "button.film_delete"), Class: "secondary"},
	}})
}

func (a *app) handleFilmSave(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	lang := language(r)
	id, err := filmID(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	gs, err := a.genres(r)
	if err != nil {
		a.fail(w, r, u, err)
		return
	}
	path := "/admin/films/" + strconv.FormatInt(id, 10)
	f := a.filmForm(lang, path, translate(lang, "button.film_save"), gs)
	f.fill(r)
	body, valid := filmBody(lang, f)
	if !valid {
		a.filmEditPage(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if err := a.api.films(ctx, r, http.MethodPatch, "/v1/films/"+strconv.FormatInt(id, 10), u.bearer(), body, nil); err != nil {
		if f.apply(lang, err, nil) {
			a.filmEditPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, withFlash("/films/"+strconv.FormatInt(id, 10), "film_saved"))
}

func (a *app) handleFilmDelete(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
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
	if err := a.api.films(ctx, r, http.MethodDelete, "/v1/films/"+strconv.FormatInt(id, 10), u.bearer(), nil, nil); err != nil {
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, "/?m=film_deleted")
}
