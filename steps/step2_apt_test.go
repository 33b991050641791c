package steps

import (
	"reflect"
	"testing"
)

func TestHTTPSOneLine(t *testing.T) {
	in := "# deb http://deb.debian.org/debian bookworm main\n" +
		"deb http://deb.debian.org/debian bookworm main contrib\n" +
		"deb-src\thttp://deb.debian.org/debian bookworm main\n" +
		"deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://security.debian.org/debian-security bookworm-security main\n" +
		"deb [ arch=amd64 ] mirror+http://mirrors.example/list.txt bookworm main\n" +
		"deb https://packages.example/apt stable main # http://comment.example/\n" +
		"deb cdrom:[Debian GNU/Linux 12]/ bookworm main\n"
	want := "# deb http://deb.debian.org/debian bookworm main\n" +
		"deb https://deb.debian.org/debian bookworm main contrib\n" +
		"deb-src\thttps://deb.debian.org/debian bookworm main\n" +
		"deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://security.debian.org/debian-security bookworm-security main\n" +
		"deb [ arch=amd64 ] mirror+https://mirrors.example/list.txt bookworm main\n" +
		"deb https://packages.example/apt stable main # http://comment.example/\n" +
		"deb cdrom:[Debian GNU/Linux 12]/ bookworm main\n"
	got, uris := httpsOneLine(in)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	wantURIs := []string{"http://deb.debian.org/debian", "http://deb.debian.org/debian", "http://security.debian.org/debian-security",
		"mirror+http://mirrors.example/list.txt", "https://packages.example/apt", "cdrom:[Debian"}
	if !reflect.DeepEqual(uris, wantURIs) {
		t.Errorf("uris %q, want %q", uris, wantURIs)
	}
	if again, _ := httpsOneLine(got); again != got {
		t.Error("switching twice changes the file again")
	}
}

func TestHTTPSDeb822(t *testing.T) {
	in := "Types: deb\n" +
		"# http://snapshot.debian.org/archive/debian/20250520T000000Z\n" +
		"URIs: http://deb.debian.org/debian\n" +
		"Suites: bookworm bookworm-updates\n" +
		"Components: main\n" +
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" +
		"\n" +
		"Types: deb\n" +
		"uris: http://deb.debian.org/debian-security\n" +
		" http://security.debian.org/debian-security\n" +
		"Suites: bookworm-security\n" +
		"X-Note: http://not-a-uri.example/\n" +
		"Components: main\n"
	want := "Types: deb\n" +
		"# http://snapshot.debian.org/archive/debian/20250520T000000Z\n" +
		"URIs: https://deb.debian.org/debian\n" +
		"Suites: bookworm bookworm-updates\n" +
		"Components: main\n" +
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" +
		"\n" +
		"Types: deb\n" +
		"uris: https://deb.debian.org/debian-security\n" +
		" https://security.debian.org/debian-security\n" +
		"Suites: bookworm-security\n" +
		"X-Note: http://not-a-uri.example/\n" +
		"Components: main\n"
	got, uris := httpsDeb822(in)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if len(uris) != 3 || uris[2] != "http://security.debian.org/debian-security" {
		t.Errorf("uris %q", uris)
	}
	files := []sourceFile{{URIs: uris}, {URIs: []string{"mirror+https://m.example/x", "https://deb.debian.org/debian"}}}
	if hs := sourceHosts(files); !reflect.DeepEqual(hs, []string{"deb.debian.org", "security.debian.org", "m.example"}) {
		t.Errorf("hosts %q", hs)
	}
}

func TestParseAptSimulation(t *testing.T) {
	got := parseAptSimulation(step2Testdata(t, "apt-sim-debian.txt"))
	want := []aptUpgrade{
		{"base-files", "12.4+deb12u11", "12.4+deb12u15"},
		{"bash", "5.2.15-2+b8", "5.2.15-2+b13"},
		{"libgcrypt20-dev", "1.10.1-3", "1.10.1-3+deb12u1"},
		{"libgcrypt20", "1.10.1-3", "1.10.1-3+deb12u1"},
		{"linux-image-6.1.0-99-amd64", "", "6.1.999-1"},
		{"linux-image-6.1.0-9-amd64", "6.1.27-1", "(removed)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := parseAptSimulation(step2Testdata(t, "apt-sim-canary.txt")); len(got) != 1 || got[0] != (aptUpgrade{"openclaw-lab-canary", "1.0", "1.1"}) {
		t.Errorf("canary: %+v", got)
	}
	if r := renderPackages(want[4:], false); r != "linux-image-6.1.0-99-amd64 (not installed)\nlinux-image-6.1.0-9-amd64 6.1.27-1\n" {
		t.Errorf("render: %q", r)
	}
}

func TestParseAptConfigDump(t *testing.T) {
	m := parseAptConfigDump(step2Testdata(t, "apt-config-dump-uu.txt"))
	for _, k := range periodicKeys {
		if m[k] != "1" {
			t.Errorf("%s = %q", k, m[k])
		}
	}
	m = parseAptConfigDump(step2Testdata(t, "apt-config-dump-none.txt"))
	if m["APT::Periodic::Unattended-Upgrade"] != "" || m["APT::Architecture"] != "amd64" {
		t.Errorf("none: %v", m)
	}
}
