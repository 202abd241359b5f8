package webproxy

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/css"
)

// Style sheets are rewritten token by token, as CSS Syntax reads them,
// so that every form a browser loads from is seen: url(x), url("x"),
// @import "x" and @import'x', the strings of image-set() and src(), and
// names spelt with escapes (u\72l). A sheet the lexer would read
// otherwise than a browser is dropped whole rather than guessed at.

// stringURLs are the functions whose string arguments are URLs.
var stringURLs = map[string]bool{"image-set": true, "-webkit-image-set": true, "src": true}

// css rewrites the URLs of a style sheet or of a style attribute's
// declarations; "" for a sheet it cannot read safely.
func (rw *rewriter) css(s string) string {
	l := css.NewLexer(parse.NewInputString(s))
	var out strings.Builder
	var blocks []string // open functions and brackets, innermost last
	importing := false  // after @import, until its URL or its end
	for {
		tt, data := l.Next()
		switch tt {
		case css.ErrorToken:
			return out.String()
		case css.URLToken:
			importing = false
			out.WriteString(cssURL(rw.link(urlValue(string(data)), true)))
			continue
		case css.BadURLToken:
			out.WriteString(`url("")`)
			continue
		case css.FunctionToken:
			name := strings.ToLower(cssUnescape(strings.TrimSuffix(string(data), "(")))
			if name == "url" {
				return "" // an escaped url( the lexer took for a function
			}
			blocks = append(blocks, name)
		case css.LeftParenthesisToken, css.LeftBracketToken, css.LeftBraceToken:
			blocks = append(blocks, string(data))
			importing = false
		case css.RightParenthesisToken, css.RightBracketToken, css.RightBraceToken:
			if len(blocks) > 0 {
				blocks = blocks[:len(blocks)-1]
			}
		case css.SemicolonToken:
			importing = false
		case css.AtKeywordToken:
			importing = strings.EqualFold(cssUnescape(string(data[1:])), "import")
		case css.StringToken:
			inURLFunc := len(blocks) > 0 && stringURLs[blocks[len(blocks)-1]]
			if importing || inURLFunc {
				images := !importing // an imported sheet is never inline data
				importing = false
				out.WriteString(`"` + cssString(rw.link(stringValue(string(data)), images)) + `"`)
				continue
			}
		}
		out.Write(data)
	}
}

// urlValue is the address inside a url( ) token, quoted or not.
func urlValue(tok string) string {
	v := tok[strings.IndexByte(tok, '(')+1:]
	v = strings.TrimSuffix(v, ")")
	v = strings.Trim(v, " \t\n\r\f")
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	return cssUnescape(v)
}

// stringValue is the text of a string token, which may lack its closing
// quote at the end of the sheet.
func stringValue(tok string) string {
	v := tok[1:]
	if len(v) > 0 && v[len(v)-1] == tok[0] {
		v = v[:len(v)-1]
	}
	return cssUnescape(v)
}

// cssURL is a url( ) token for the address u.
func cssURL(u string) string {
	return `url("` + cssString(u) + `")`
}

// cssString escapes s for a double-quoted CSS string; < is escaped too,
// so that the string cannot close a <style> element.
func cssString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "<", `\3c `, "\n", `\a `, "\r", `\d `, "\f", `\c `).Replace(s)
}

// cssUnescape reads CSS escapes: \ and one to six hex digits (with one
// white space after), an escaped line break (removed), or any other
// character for itself.
func cssUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break
		}
		j := i
		for j < len(s) && j-i < 6 && isHex(s[j]) {
			j++
		}
		if j > i {
			n, _ := strconv.ParseUint(s[i:j], 16, 32)
			r := rune(n)
			if n == 0 || n > utf8.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			if j < len(s) && strings.IndexByte(" \t\n\r\f", s[j]) >= 0 {
				if s[j] == '\r' && j+1 < len(s) && s[j+1] == '\n' {
					j++
				}
				j++
			}
			i = j - 1
			continue
		}
		switch s[i] {
		case '\n', '\f':
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n - 1
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
