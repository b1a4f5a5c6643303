package web

import (
	"errors"
	"net/http"
)

// form is one HTML form, rendered by the "form" partial: every field with
// its label, its hint and its error next to it (aria-describedby), so a
// screen reader announces what is wrong where it is wrong.
type form struct {
	Action string
	Submit string
	Class  string // "secondary" etc. for the button
	Hidden []hidden
	Fields []*field
	Error  string // about the whole form, shown above it
}

type hidden struct{ Name, Value string }

type field struct {
	Name         string
	Type         string // text, email, password, number, textarea, select, date, checkbox (Value "yes" when ticked)
	Label        string
	Value        string
	Hint         string
	Error        string
	Autocomplete string
	InputMode    string
	Min, Max     string
	MaxLength    int
	Required     bool
	Options      []option
	// Scope keeps the id unique when several forms of a page have a field
	// of the same name (a password in two forms); see scoped.
	Scope string
}

type option struct {
	Value, Label string
	Selected     bool
}

// ID is the field's element id, unique within a page: one form per field
// name on a page, or each such form scoped.
func (f *field) ID() string {
	if f.Scope != "" {
		return "f-" + f.Scope + "-" + f.Name
	}
	return "f-" + f.Name
}

// scoped gives every field of f the id scope s and returns f.
func scoped(s string, f *form) *form {
	for _, fl := range f.Fields {
		fl.Scope = s
	}
	return f
}

// field returns the field called name, or nil.
func (f *form) field(name string) *field {
	for _, fl := range f.Fields {
		if fl.Name == name {
			return fl
		}
	}
	return nil
}

// fill copies the posted values into the fields, passwords excepted: a
// form shown again never echoes a password into the page.
func (f *form) fill(r *http.Request) {
	for _, fl := range f.Fields {
		if fl.Type != "password" {
			fl.Value = r.PostFormValue(fl.Name)
		}
		for i := range fl.Options {
			fl.Options[i].Selected = fl.Options[i].Value == fl.Value
		}
	}
}

// apply shows an API's refusal on the form: each field error next to its
// field (apiField maps the API's field names to the form's where they
// differ), the rest above the form. It reports false when err is not
// something a form can show (a service down, too many attempts): the
// caller then shows the error page.
func (f *form) apply(lang string, err error, apiField map[string]string) bool {
	var ae *apiError
	if !errors.As(err, &ae) || !isFormError(err) {
		return false
	}
	placed := false
	for _, fe := range ae.Fields {
		name := fe.Field
		if n, ok := apiField[name]; ok {
			name = n
		}
		if fl := f.field(name); fl != nil {
			fl.Error = fieldMessage(lang, fe.Message)
			placed = true
		} else {
			f.Error = translate(lang, "error.generic", fe.Field+": "+fe.Message)
		}
	}
	switch {
	case ae.Code == "invalid_credentials":
		f.Error = translate(lang, "error.credentials")
	case ae.Code == "wrong_password":
		name := "password"
		if f.field("current_password") != nil {
			name = "current_password"
		}
		f.setError(lang, name, "error.wrong_password")
	case ae.Code == "email_taken":
		f.setError(lang, "new_email", "error.email_taken")
	case ae.Code == "invalid_code":
		f.setError(lang, "code", "error.code")
	case ae.Code == "code_expired":
		f.setError(lang, "code", "error.code_expired")
	case ae.Code == "code_attempts_exceeded":
		f.setError(lang, "code", "error.code_burned")
	case ae.Code == "register_again":
		f.Error = translate(lang, "error.register_again")
	case ae.Status == http.StatusConflict:
		f.Error = translate(lang, "error.exists")
	case placed:
		f.Error = translate(lang, "error.form")
	case f.Error == "":
		f.Error = translate(lang, "error.generic", ae.Detail)
	}
	return true
}

func (f *form) setError(lang, name, key string) {
	if fl := f.field(name); fl != nil {
		fl.Error = translate(lang, key)
		f.Error = translate(lang, "error.form")
		return
	}
	f.Error = translate(lang, key)
}

// formPage is the content of the "form" template: a heading, a few lines
// of text, the form, and links below it.
type formPage struct {
	Heading string
	Intro   string
	Form    *form
	Links   []link
}

type link struct {
	Text, Lead, Href string
}
