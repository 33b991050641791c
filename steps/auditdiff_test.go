package steps

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func snap(items ...Item) Snapshot {
	return Snapshot{Version: 1, Taken: time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC), Items: items}
}

func TestDiffSnapshots(t *testing.T) {
	a := snap(
		Item{"docker", "version", "20.10.24+dfsg1"},
		Item{"sshd", "passwordauthentication", "yes"},
		Item{"sshd", "permitrootlogin", "yes"},
		Item{"ufw", "status", "inactive"},
		Item{"listening", "tcp 0.0.0.0:8080", "docker-proxy"},
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -j RETURN", "#1"},
	)
	b := snap(
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -d 10.0.0.0/8 -j DROP", "#1"},
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -j RETURN", "#2"},
		Item{"ufw", "status", "active"},
		Item{"ufw rules", "22/tcp ALLOW IN 192.168.1.50", "#1"},
		Item{"sshd", "permitrootlogin", "no"},
		Item{"sshd", "passwordauthentication", "no"},
		Item{"docker", "version", "20.10.24+dfsg1"},
	)
	got := DiffSnapshots(a, b)
	want := []ItemDiff{
		{Section: "listening", Key: "tcp 0.0.0.0:8080", Kind: "removed", Old: "docker-proxy"},
		{Section: "ufw", Key: "status", Kind: "changed", Old: "inactive", New: "active"},
		{Section: "ufw rules", Key: "22/tcp ALLOW IN 192.168.1.50", Kind: "added", New: "#1"},
		{Section: "iptables filter DOCKER-USER", Key: "-A DOCKER-USER -d 10.0.0.0/8 -j DROP", Kind: "added", New: "#1"},
		{Section: "iptables filter DOCKER-USER", Key: "-A DOCKER-USER -j RETURN", Kind: "changed", Old: "#1", New: "#2"},
		{Section: "sshd", Key: "passwordauthentication", Kind: "changed", Old: "yes", New: "no"},
		{Section: "sshd", Key: "permitrootlogin", Kind: "changed", Old: "yes", New: "no"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	// The reverse diff swaps added and removed and old and new.
	rev := DiffSnapshots(b, a)
	if len(rev) != len(want) || rev[0].Kind != "added" || rev[1].Old != "active" || rev[2].Kind != "removed" {
		t.Errorf("reverse: %+v", rev)
	}

	text := RenderDiff(got)
	wantText := `listening
  - tcp 0.0.0.0:8080: docker-proxy

ufw
  ~ status: inactive → active

ufw rules
  + #1  22/tcp ALLOW IN 192.168.1.50

iptables filter DOCKER-USER
  + #1  -A DOCKER-USER -d 10.0.0.0/8 -j DROP
  ~ #1 → #2  -A DOCKER-USER -j RETURN

sshd
  ~ passwordauthentication: yes → no
  ~ permitrootlogin: yes → no

2 added, 1 removed, 4 changed
`
	if text != wantText {
		t.Errorf("RenderDiff:\n%s\nwant:\n%s", text, wantText)
	}
}

func TestDiffSnapshotsNone(t *testing.T) {
	a := snap(Item{"sshd", "port", "22"}, Item{"docker", "installed", "no"})
	b := snap(Item{"docker", "installed", "no"}, Item{"sshd", "port", "22"})
	b.Notes = []string{"notes are not compared"}
	if d := DiffSnapshots(a, b); len(d) != 0 {
		t.Errorf("got %+v", d)
	}
	if d := DiffSnapshots(Snapshot{}, Snapshot{}); len(d) != 0 {
		t.Errorf("empty: %+v", d)
	}
	if got := RenderDiff(nil); got != "No differences\n" {
		t.Errorf("RenderDiff(nil) = %q", got)
	}
}

func TestDiffSnapshotsOrder(t *testing.T) {
	// Sections in reading order, keys naturally ("#2" before "#10", "eth2" before "eth10"), installed first.
	var items []Item
	for _, k := range []string{"eth10 inet 10.0.0.10/24", "eth2 inet 10.0.0.2/24", "eth1 inet 10.0.0.1/24"} {
		items = append(items, Item{"addresses", k, "global"})
	}
	items = append(items, Item{"docker", "version", "28.2.2"}, Item{"docker", "installed", "yes"},
		Item{"zzz unknown", "k", "v"}, Item{"system", "kernel", "Linux"}, Item{"iptables nat DOCKER", "policy", "x"},
		Item{"iptables filter X", "-A X -j DROP [10]", "#10"}, Item{"iptables filter X", "-A X -j DROP [2]", "#2"})
	d := DiffSnapshots(Snapshot{}, snap(items...))
	var got []string
	for _, x := range d {
		got = append(got, x.Section+" | "+x.Key)
	}
	want := []string{
		"system | kernel",
		"addresses | eth1 inet 10.0.0.1/24", "addresses | eth2 inet 10.0.0.2/24", "addresses | eth10 inet 10.0.0.10/24",
		"iptables filter X | -A X -j DROP [2]", "iptables filter X | -A X -j DROP [10]",
		"iptables nat DOCKER | policy",
		"docker | installed", "docker | version",
		"zzz unknown | k",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n%s", strings.Join(got, "\n"))
	}
	// Deterministic whatever the input order.
	for i := 0; i < 20; i++ {
		shuffled := append([]Item(nil), items...)
		sort.Slice(shuffled, func(a, b int) bool { return (a*7+i)%5 < (b*7+i)%5 })
		if d2 := DiffSnapshots(Snapshot{}, snap(shuffled...)); !reflect.DeepEqual(d, d2) {
			t.Fatalf("order depends on input order")
		}
	}
}

func TestDiffSnapshotsDuplicateKeys(t *testing.T) {
	// A hand-edited file may repeat a key: the values are kept together rather than one silently winning.
	a := snap(Item{"s", "k", "1"}, Item{"s", "k", "2"})
	b := snap(Item{"s", "k", "1"})
	d := DiffSnapshots(a, b)
	if len(d) != 1 || d[0].Kind != "changed" || d[0].Old != "1\n2" || d[0].New != "1" {
		t.Errorf("got %+v", d)
	}
	if !strings.Contains(RenderDiff(d), `~ k: 1\n2 → 1`) {
		t.Errorf("render: %s", RenderDiff(d))
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"#2", "#10", true}, {"#10", "#2", false}, {"eth2", "eth10", true}, {"a", "b", true}, {"a01", "a1", true},
		{"a1", "a01", false}, {"", "a", true}, {"a", "a1", true}, {"x9y", "x10", true}, {"10.0.0.2", "10.0.0.10", true},
	} {
		if got := naturalCompare(c.a, c.b) < 0; got != c.less {
			t.Errorf("naturalCompare(%q, %q) < 0 = %v", c.a, c.b, got)
		}
		if naturalCompare(c.a, c.a) != 0 {
			t.Errorf("%q != itself", c.a)
		}
	}
}

func TestRenderSnapshot(t *testing.T) {
	s := snap(
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -j RETURN", "#10"},
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -d 10.0.0.0/8 -j DROP", "#2"},
		Item{"iptables filter DOCKER-USER", "policy", "none (user-defined chain)"},
		Item{"iptables filter DOCKER-USER", "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "#1"},
		Item{"system", "kernel", "Linux 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64"},
		Item{"docker", "daemon", "not running"},
		Item{"docker", "installed", "yes"},
	)
	s.Notes = []string{"sshd -T failed (exit status 255): needs root"}
	want := `Audit snapshot taken 2026-11-25T14:00:00Z (7 items)

system
  kernel: Linux 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64

iptables filter DOCKER-USER
  policy: none (user-defined chain)
  #1  -A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
  #2  -A DOCKER-USER -d 10.0.0.0/8 -j DROP
  #10  -A DOCKER-USER -j RETURN

docker
  installed: yes
  daemon: not running

Notes
  - sshd -T failed (exit status 255): needs root
`
	if got := RenderSnapshot(s); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzDiffSnapshots builds two snapshots from arbitrary text (one item per line, "section|key|value") and
// checks the diff's laws: no panic, a snapshot has no differences with itself, the diff is deterministic and
// ordered, every item difference is accounted for, and the reverse diff mirrors it.
func FuzzDiffSnapshots(f *testing.F) {
	f.Add("docker|version|20.10\nsshd|port|22", "docker|version|28.2\nufw|status|active")
	f.Add("a|#10|x\na|#2|y\na|#2|z", "a|#2|y")
	f.Add("", "iptables filter X|-A X -j DROP|#1\n|||\n")
	f.Fuzz(func(t *testing.T, sa, sb string) {
		parse := func(s string) Snapshot {
			var items []Item
			for _, line := range strings.Split(s, "\n") {
				p := strings.SplitN(line, "|", 3)
				for len(p) < 3 {
					p = append(p, "")
				}
				items = append(items, Item{p[0], p[1], p[2]})
			}
			return snap(items...)
		}
		a, b := parse(sa), parse(sb)
		if d := DiffSnapshots(a, a); len(d) != 0 {
			t.Fatalf("self diff: %+v", d)
		}
		d := DiffSnapshots(a, b)
		if d2 := DiffSnapshots(a, b); !reflect.DeepEqual(d, d2) {
			t.Fatal("not deterministic")
		}
		for i := 1; i < len(d); i++ {
			if !diffLess(d[i-1], d[i]) {
				t.Fatalf("out of order: %+v then %+v", d[i-1], d[i])
			}
		}
		rev := DiffSnapshots(b, a)
		if len(rev) != len(d) {
			t.Fatalf("reverse has %d entries, forward %d", len(rev), len(d))
		}
		mirror := map[string]string{DiffAdded: DiffRemoved, DiffRemoved: DiffAdded, DiffChanged: DiffChanged}
		for i := range d {
			if rev[i].Section != d[i].Section || rev[i].Key != d[i].Key || rev[i].Kind != mirror[d[i].Kind] ||
				rev[i].Old != d[i].New || rev[i].New != d[i].Old {
				t.Fatalf("reverse %+v does not mirror %+v", rev[i], d[i])
			}
		}
		ia, ib := index(a), index(b)
		for _, x := range d {
			k := itemKey{x.Section, x.Key}
			va, inA := ia[k]
			vb, inB := ib[k]
			switch x.Kind {
			case DiffAdded:
				if inA || !inB || x.New != vb {
					t.Fatalf("bad added %+v", x)
				}
			case DiffRemoved:
				if !inA || inB || x.Old != va {
					t.Fatalf("bad removed %+v", x)
				}
			case DiffChanged:
				if !inA || !inB || va == vb {
					t.Fatalf("bad changed %+v", x)
				}
			default:
				t.Fatalf("kind %q", x.Kind)
			}
		}
		out := RenderDiff(d)
		if len(d) == 0 != (out == "No differences\n") {
			t.Fatalf("render: %q for %d diffs", out, len(d))
		}
		RenderSnapshot(a)
	})
}
