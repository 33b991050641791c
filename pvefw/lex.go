package pvefw

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pve-firewall is Perl reading the file as bytes, so its regex classes are
// byte classes. These helpers reproduce the ones its parser uses; Go's
// unicode-aware equivalents would accept lines pve-firewall does not.

// isHSpace is Perl's \h on a byte string: it also matches the Latin-1
// no-break space byte, unlike \s.
func isHSpace(b byte) bool { return b == ' ' || b == '\t' || b == 0xA0 }

// isSpace is Perl's \s on a byte string (ASCII only, \v included since 5.18).
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

// trimH is the /^\h*(.*?)\h*$/ every line goes through before parsing.
func trimH(s string) string {
	i, j := 0, len(s)
	for i < j && isHSpace(s[i]) {
		i++
	}
	for j > i && isHSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// trimS trims Perl \s from both ends.
func trimS(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func trimLeftS(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

func trimRightS(s string) string {
	j := len(s)
	for j > 0 && isSpace(s[j-1]) {
		j--
	}
	return s[:j]
}

// leadingNonSpace splits s at its first \s: the \S+ of a Perl regex.
func leadingNonSpace(s string) (tok, rest string) {
	i := 0
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isBlank(s string) bool { return trimS(s) == "" }

// asciiLower is Perl's lc on a byte string without a locale: only A-Z change.
func asciiLower(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func asciiUpper(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// perlFalse is Perl truthiness for a string: pve-firewall tests most rule
// fields with `if ($rule->{x})`, so "0" counts as not set.
func perlFalse(s string) bool { return s == "" || s == "0" }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digitsAtMost reports whether the decimal string s (digits only) is <= max,
// without overflowing on long inputs the way strconv would refuse them.
func digitsAtMost(s string, max int) bool {
	s = strings.TrimLeft(s, "0")
	if len(s) > 9 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n <= max
}

func atoiSmall(s string) int {
	s = strings.TrimLeft(s, "0")
	if len(s) > 9 {
		return 1 << 30
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isName matches pve-firewall's name pattern [A-Za-z][A-Za-z0-9\-\_]+
// (two characters at least) used for IP sets, aliases and security groups.
func isName(s string) bool {
	if len(s) < 2 || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// quote shortens a value for a message and escapes what would garble a
// terminal or an annotation: control characters and invalid UTF-8.
func quote(s string) string {
	const max = 60
	var b strings.Builder
	n := 0
	for i, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.IsControl(r) || r == 0xfeff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return "'" + b.String() + "'"
}
