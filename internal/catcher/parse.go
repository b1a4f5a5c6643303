package catcher

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// Limits that keep a hostile message from costing much: MIME nesting depth,
// number of parts looked at, and bytes kept per decoded body.
const (
	maxDepth     = 8
	maxParts     = 64
	maxBodyText  = 1 << 20
	snippetBytes = 200
)

// parsed is what the catcher keeps from a raw message.
type parsed struct {
	MessageID   string
	From        mail.Address
	To          []mail.Address
	Cc          []mail.Address
	Bcc         []mail.Address
	ReplyTo     []mail.Address
	ReturnPath  string
	Subject     string
	Date        time.Time
	Text        string
	HTML        string
	Attachments int
}

// wordDecoder decodes RFC 2047 encoded words in any charset x/text knows
// (KOI8-R and Windows-1251 still turn up in Russian mail).
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(r), nil
}

var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// parseMessage extracts headers and the decoded text and HTML bodies. It
// never fails: what cannot be parsed is left empty, as a mail catcher must
// show whatever it was given.
func parseMessage(raw []byte) parsed {
	var p parsed
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		p.Text = limitText(string(raw))
		return p
	}
	h := msg.Header
	p.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	p.Subject = decodeHeader(h.Get("Subject"))
	p.ReturnPath = strings.Trim(strings.TrimSpace(h.Get("Return-Path")), "<>")
	if from := addresses(h.Get("From")); len(from) > 0 {
		p.From = from[0]
	} else if v := h.Get("From"); v != "" {
		p.From = mail.Address{Name: decodeHeader(v)}
	}
	p.To = addresses(h.Get("To"))
	p.Cc = addresses(h.Get("Cc"))
	p.Bcc = addresses(h.Get("Bcc"))
	p.ReplyTo = addresses(h.Get("Reply-To"))
	if d, err := h.Date(); err == nil {
		p.Date = d
	}
	parts := 0
	walkPart(textproto.MIMEHeader(h), msg.Body, &p, 0, &parts)
	return p
}

// walkPart decodes one MIME entity, descending into multiparts. The first
// inline text/plain and text/html bodies win; everything else that has a
// file name or is marked as an attachment is counted.
func walkPart(h textproto.MIMEHeader, body io.Reader, p *parsed, depth int, parts *int) {
	*parts++
	if depth > maxDepth || *parts > maxParts {
		return
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				return
			}
			walkPart(part.Header, part, p, depth+1, parts)
		}
	}
	disposition, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	if disposition == "attachment" || dparams["filename"] != "" || params["name"] != "" {
		p.Attachments++
		return
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return
	}
	if (mediaType == "text/plain" && p.Text != "") || (mediaType == "text/html" && p.HTML != "") {
		return
	}
	text := decodeBody(body, h.Get("Content-Transfer-Encoding"), params["charset"])
	if mediaType == "text/plain" {
		p.Text = text
	} else {
		p.HTML = text
	}
}

// decodeBody undoes the transfer encoding and converts the charset to UTF-8.
func decodeBody(body io.Reader, transferEncoding, charset string) string {
	switch strings.ToLower(strings.TrimSpace(transferEncoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		// The decoder skips CR and LF, which is how base64 bodies are wrapped.
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	if cs := strings.ToLower(strings.TrimSpace(charset)); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charsetReader(cs, body); err == nil {
			body = r
		}
	}
	b, _ := io.ReadAll(io.LimitReader(body, maxBodyText))
	return limitText(strings.ToValidUTF8(string(b), "\uFFFD"))
}

func limitText(s string) string {
	if len(s) > maxBodyText {
		s = strings.ToValidUTF8(s[:maxBodyText], "")
	}
	return s
}

func decodeHeader(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

func addresses(v string) []mail.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	list, err := addressParser.ParseList(v)
	if err != nil {
		return nil
	}
	out := make([]mail.Address, 0, len(list))
	for _, a := range list {
		out = append(out, *a)
	}
	return out
}

// snippet is what Mailpit shows under a subject: the HTML body's text (or
// else the text body) on one line, cut after 200 bytes at a character
// boundary, with "..." when cut.
func snippet(text, htmlBody string) string {
	if strings.TrimSpace(htmlBody) != "" {
		text = stripTags(htmlBody)
	}
	text = strings.Join(strings.FieldsFunc(text, unicode.IsSpace), " ")
	if len(text) <= snippetBytes {
		return text
	}
	cut := snippetBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "..."
}

// stripTags drops markup, and the contents of <style>, <script> and <head>,
// from an HTML body. It is for a snippet, not a sanitiser: the result is
// always escaped again before it reaches a page.
func stripTags(s string) string {
	var b strings.Builder
	lower := asciiLower(s) // byte offsets must match s
	for i := 0; i < len(s); {
		if s[i] != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(s[i : i+j])
			b.WriteByte(' ')
			i += j
			continue
		}
		if el := hiddenElement(lower[i:]); el != "" {
			// Skip to the end of the closing tag, or to the end of the input.
			end := strings.Index(lower[i:], "</"+el)
			if end < 0 {
				break
			}
			i += end
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return html.UnescapeString(b.String())
}

// hiddenElement reports which element whose content is not text opens at the
// start of s ("" for any other tag).
func hiddenElement(s string) string {
	for _, el := range []string{"style", "script", "head", "title"} {
		if rest, ok := strings.CutPrefix(s, "<"+el); ok && (rest == "" || strings.IndexByte(" \t\r\n>/", rest[0]) >= 0) {
			return el
		}
	}
	return ""
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
