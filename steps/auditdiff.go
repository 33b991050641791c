package steps

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ItemDiff is one difference between two snapshots: an item that was added, removed or changed.
type ItemDiff struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Kind    string `json:"kind"` // "added", "removed" or "changed"
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// The kinds of ItemDiff.
const (
	DiffAdded   = "added"
	DiffRemoved = "removed"
	DiffChanged = "changed"
)

// sectionOrder is the reading order of the known sections; others (and "iptables …", "ufw rules") sort by
// their prefix's rank and then by name.
var sectionOrder = []string{
	"system", "os", "ipv6", "addresses", "routes", "routes ipv6", "listening", "ufw", "ufw rules",
	"iptables", "iptables filter", "iptables nat", "docker", "docker containers", "daemon.json",
	"services", "sshd", "openclaw",
}

func sectionRank(s string) int {
	best, bestLen := len(sectionOrder), -1
	for i, p := range sectionOrder {
		if (s == p || strings.HasPrefix(s, p+" ")) && len(p) > bestLen {
			best, bestLen = i, len(p)
		}
	}
	return best
}

// compareSections orders sections by their rank, then naturally by name.
func compareSections(a, b string) int {
	if ra, rb := sectionRank(a), sectionRank(b); ra != rb {
		return ra - rb
	}
	return naturalCompare(a, b)
}

// compareKeys orders keys within a section: naturally ("#2" before "#10", "eth2" before "eth10"), with
// "installed" and "policy" first because they say whether the rest exists at all.
func compareKeys(a, b string) int {
	fa, fb := leadKey(a), leadKey(b)
	if fa != fb {
		if fa {
			return -1
		}
		return 1
	}
	return naturalCompare(a, b)
}

func leadKey(k string) bool { return k == "installed" || k == "policy" }

// naturalCompare compares strings with runs of digits compared as numbers; distinct strings never compare
// equal (ties fall back to byte order), so sorting with it is deterministic.
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[si:i], "0"), strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if ca != cb {
			return int(ca) - int(cb)
		}
		i++
		j++
	}
	if d := (len(a) - i) - (len(b) - j); d != 0 {
		return d
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// compareEntries orders items (and diffs): by section, then rules by their position ("#2" before "#10";
// 0 for items that are not rules, so a chain's policy comes before its rules), then by key.
func compareEntries(secA, keyA string, posA int, secB, keyB string, posB int) int {
	if c := compareSections(secA, secB); c != 0 {
		return c
	}
	if posA != posB {
		if posA < posB {
			return -1
		}
		return 1
	}
	return compareKeys(keyA, keyB)
}

// SortItems puts items in the order snapshots are stored and shown: by section, a chain's rules in their
// order, then by key.
func SortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if c := compareEntries(a.Section, a.Key, positionOf(a.Value), b.Section, b.Key, positionOf(b.Value)); c != 0 {
			return c < 0
		}
		return a.Value < b.Value
	})
}

// diffPosition is where a rule is after the change (where it was, for a removed one).
func diffPosition(d ItemDiff) int {
	if d.Kind == DiffRemoved {
		return positionOf(d.Old)
	}
	return positionOf(d.New)
}

// diffLess is the order of DiffSnapshots' result.
func diffLess(a, b ItemDiff) bool {
	return compareEntries(a.Section, a.Key, diffPosition(a), b.Section, b.Key, diffPosition(b)) < 0
}

type itemKey struct{ Section, Key string }

// index maps each (section, key) to its value. A snapshot should not hold the same key twice; if a
// hand-edited one does, the values are joined in order so nothing is silently lost.
func index(s Snapshot) map[itemKey]string {
	m := make(map[itemKey]string, len(s.Items))
	for _, it := range s.Items {
		k := itemKey{it.Section, it.Key}
		if old, ok := m[k]; ok {
			m[k] = old + "\n" + it.Value
			continue
		}
		m[k] = it.Value
	}
	return m
}

// DiffSnapshots compares two snapshots item by item: what was added in b, removed from a, or changed
// between them, ordered by section, then rules by position (their new one; the old one when removed),
// then key. Notes are not compared (they are about how the snapshot was
// taken, not about the machine).
func DiffSnapshots(a, b Snapshot) []ItemDiff {
	ia, ib := index(a), index(b)
	var out []ItemDiff
	for k, va := range ia {
		vb, ok := ib[k]
		switch {
		case !ok:
			out = append(out, ItemDiff{Section: k.Section, Key: k.Key, Kind: DiffRemoved, Old: va})
		case va != vb:
			out = append(out, ItemDiff{Section: k.Section, Key: k.Key, Kind: DiffChanged, Old: va, New: vb})
		}
	}
	for k, vb := range ib {
		if _, ok := ia[k]; !ok {
			out = append(out, ItemDiff{Section: k.Section, Key: k.Key, Kind: DiffAdded, New: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return diffLess(out[i], out[j]) })
	return out
}

var positionRE = regexp.MustCompile(`^#\d+$`)

// isPosition reports a value that is a rule's position ("#3"): such items read best as "#3  RULE".
func isPosition(v string) bool { return positionRE.MatchString(v) }

// RenderDiff shows a diff grouped by section: "+ key: value" for additions, "- key: value" for removals,
// "~ key: old → new" for changes; rules (valued by their position) read "+ #1  RULE" and
// "~ #2 → #3  RULE". An empty diff is "No differences".
func RenderDiff(d []ItemDiff) string {
	if len(d) == 0 {
		return "No differences\n"
	}
	var b strings.Builder
	var added, removed, changed int
	section := ""
	for i, x := range d {
		if i == 0 || x.Section != section {
			if i > 0 {
				b.WriteString("\n")
			}
			section = x.Section
			b.WriteString(section + "\n")
		}
		switch x.Kind {
		case DiffAdded:
			added++
			b.WriteString("  + " + renderKV(x.Key, x.New) + "\n")
		case DiffRemoved:
			removed++
			b.WriteString("  - " + renderKV(x.Key, x.Old) + "\n")
		default:
			changed++
			if isPosition(x.Old) && isPosition(x.New) {
				b.WriteString("  ~ " + x.Old + " → " + x.New + "  " + oneLine(x.Key) + "\n")
			} else {
				b.WriteString("  ~ " + oneLine(x.Key) + ": " + oneLine(x.Old) + " → " + oneLine(x.New) + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "\n%d added, %d removed, %d changed\n", added, removed, changed)
	return b.String()
}

func renderKV(k, v string) string {
	if isPosition(v) {
		return v + "  " + oneLine(k)
	}
	return oneLine(k) + ": " + oneLine(v)
}

// oneLine keeps every item on one line of the diff, whatever a value holds.
func oneLine(s string) string {
	if s == "" {
		return `""`
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// RenderSnapshot shows a snapshot grouped by section, rules in their chain's order, then its notes.
func RenderSnapshot(s Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Audit snapshot taken %s (%d items)\n", s.Taken.UTC().Format(time.RFC3339), len(s.Items))
	items := append([]Item(nil), s.Items...)
	SortItems(items)
	for i := 0; i < len(items); {
		j := i
		for j < len(items) && items[j].Section == items[i].Section {
			j++
		}
		group := items[i:j]
		b.WriteString("\n" + items[i].Section + "\n")
		for _, it := range group {
			b.WriteString("  " + renderKV(it.Key, it.Value) + "\n")
		}
		i = j
	}
	if len(s.Notes) > 0 {
		b.WriteString("\nNotes\n")
		for _, n := range s.Notes {
			b.WriteString("  - " + oneLine(n) + "\n")
		}
	}
	return b.String()
}

// positionOf is a rule's position for ordering (0 for items that are not rules, so they come first).
func positionOf(v string) int {
	if !isPosition(v) {
		return 0
	}
	n := 0
	for _, c := range v[1:] {
		if n > 1<<30 {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
