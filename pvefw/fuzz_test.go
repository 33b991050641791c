package pvefw

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var fuzzNames = []string{"100.fw", "cluster.fw", "host.fw"}

func FuzzCheck(f *testing.F) {
	for _, name := range []string{"100.fw", "cluster.fw.fragment"} {
		data := readTestdata(f, name)
		f.Add(data, uint8(0))
		f.Add(data, uint8(1))
	}
	for _, v := range readVectors(f) {
		f.Add([]byte(strings.Join(v.file, "\n")+"\n"), uint8(0))
	}
	for _, s := range []string{
		"[OPTIONS]\r\nenable: 1\r\n",
		bom + "[OPTIONS]\nenable: 1\n",
		"[RULES] # x\nOUT DROP -dest 10.0.0.0/8#lan -p tcp\n",
		"[RULES]\nOUT ACCEPT -p tcp -dport 443\nOUT DROP -dest 192.168.1.0/24\n",
		"[group web]\nIN HTTPS(ACCEPT) -source +dc/x\n[RULES]\nGROUP web -i eth0\n",
		"[ALIASES]\nlan 10/8\n[IPSET s1]\n!lan\n[RULES]\nIN DROP -source +s1 -dest lan\n",
		"",
		"\n\n",
		"[OPTIONS]\nlog_ratelimit: enable=1,rate=1/second\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		name := fuzzNames[int(kind)%len(fuzzNames)]
		file, fs := Parse(name, data)

		lines := bytes.Split(data, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		// An empty file is reported on line 1.
		maxLine := max(len(lines), 1)
		last := 0
		for _, x := range fs {
			if x.Line < 1 || x.Line > maxLine {
				t.Fatalf("finding on line %d of a %d-line file: %v", x.Line, len(lines), x)
			}
			if x.Line <= last {
				t.Fatalf("two findings on line %d, or out of order: %v", x.Line, fs)
			}
			last = x.Line
			if x.Severity != Error && x.Severity != Warning {
				t.Fatalf("severity %v", x.Severity)
			}
			if x.File != name || x.Message == "" {
				t.Fatalf("finding %#v", x)
			}
			if !utf8.ValidString(x.Message) || strings.IndexFunc(x.Message, unicode.IsControl) >= 0 {
				t.Fatalf("message with invalid UTF-8 or a control character: %q", x.Message)
			}
		}
		for _, r := range file.Rules {
			if r.Line < 1 || r.Line > maxLine {
				t.Fatalf("rule on line %d", r.Line)
			}
		}
		_ = Format(file)
	})
}
