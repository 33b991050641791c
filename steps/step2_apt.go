package steps

// Step 2's package layer: apt sources on http:// (default-deny outbound breaks them), the upgradable
// packages, and unattended-upgrades.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"openclaw-harden/system"
)

const (
	aptSourcesList = "/etc/apt/sources.list"
	autoUpgrades   = "/etc/apt/apt.conf.d/20auto-upgrades"
	aptListsDir    = "/var/lib/apt/lists"
	// A full-upgrade on a VM that was never updated can take many minutes; apt's own lock wait is separate.
	aptUpdateTimeout  = 15 * time.Minute
	aptUpgradeTimeout = 60 * time.Minute
	aptInstallTimeout = 30 * time.Minute
)

// aptOpts keep dpkg from asking about changed configuration files (keep the operator's) and wait for a
// running apt (unattended-upgrades at boot) instead of failing on its lock.
var aptOpts = []string{"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "-o", "DPkg::Lock::Timeout=300"}

// sourceFile is one apt sources file and its URIs.
type sourceFile struct {
	Path    string
	Deb822  bool
	Content string
	HTTPS   string   // the content with every http:// URI switched to https://
	HTTP    []string // the http:// URIs it has
	URIs    []string // every URI it has
}

// aptSources reads /etc/apt/sources.list and sources.list.d/*.list and *.sources (deb822).
func aptSources(h *system.Host) ([]sourceFile, error) {
	paths := []string{aptSourcesList}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, err := h.Glob(pat)
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		paths = append(paths, m...)
	}
	var out []sourceFile
	for _, p := range paths {
		data, err := h.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		sf := sourceFile{Path: p, Deb822: strings.HasSuffix(p, ".sources"), Content: string(data)}
		if sf.Deb822 {
			sf.HTTPS, sf.URIs = httpsDeb822(sf.Content)
		} else {
			sf.HTTPS, sf.URIs = httpsOneLine(sf.Content)
		}
		for _, u := range sf.URIs {
			if aptIsHTTP(u) {
				sf.HTTP = append(sf.HTTP, u)
			}
		}
		out = append(out, sf)
	}
	return out, nil
}

var httpURIRE = regexp.MustCompile(`(^|[\s+])http://`)

func aptIsHTTP(uri string) bool {
	return strings.HasPrefix(uri, "http://") || strings.Contains(uri, "+http://")
}

// httpsOneLine switches the URIs of "deb [options] URI suite components" lines to https:// and returns the
// URIs it saw. Comments and everything else stay byte for byte as they are.
func httpsOneLine(content string) (string, []string) {
	lines := strings.Split(content, "\n")
	var uris []string
	for i, line := range lines {
		spans := aptFieldSpans(line)
		if len(spans) < 2 {
			continue
		}
		if kw := line[spans[0][0]:spans[0][1]]; kw != "deb" && kw != "deb-src" {
			continue
		}
		k := 1
		if strings.HasPrefix(line[spans[1][0]:spans[1][1]], "[") { // options, possibly spread over fields
			for k < len(spans) && !strings.HasSuffix(line[spans[k][0]:spans[k][1]], "]") {
				k++
			}
			k++
		}
		if k >= len(spans) {
			continue
		}
		s, e := spans[k][0], spans[k][1]
		uri := line[s:e]
		uris = append(uris, uri)
		lines[i] = line[:s] + httpURIRE.ReplaceAllString(uri, "${1}https://") + line[e:]
	}
	return strings.Join(lines, "\n"), uris
}

// aptFieldSpans are the [start, end) byte offsets of the whitespace-separated fields of line.
func aptFieldSpans(line string) [][2]int {
	var spans [][2]int
	start := -1
	for i := 0; i <= len(line); i++ {
		space := i == len(line) || line[i] == ' ' || line[i] == '\t'
		switch {
		case space && start >= 0:
			spans = append(spans, [2]int{start, i})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return spans
}

// httpsDeb822 switches the values of "URIs:" fields (and their continuation lines) to https://.
func httpsDeb822(content string) (string, []string) {
	lines := strings.Split(content, "\n")
	var uris []string
	inURIs := false
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case line != "" && (line[0] == ' ' || line[0] == '\t'):
			if !inURIs {
				continue
			}
		default:
			name, _, ok := strings.Cut(line, ":")
			inURIs = ok && strings.EqualFold(strings.TrimSpace(name), "URIs")
			if !inURIs {
				continue
			}
		}
		value := line
		if !(line != "" && (line[0] == ' ' || line[0] == '\t')) {
			_, value, _ = strings.Cut(line, ":")
		}
		uris = append(uris, strings.Fields(value)...)
		lines[i] = line[:len(line)-len(value)] + httpURIRE.ReplaceAllString(value, "${1}https://")
	}
	return strings.Join(lines, "\n"), uris
}

// sourceHosts are the host names apt fetches from, in the order the sources name them.
func sourceHosts(files []sourceFile) []string {
	var hosts []string
	seen := map[string]bool{}
	for _, f := range files {
		for _, u := range f.URIs {
			if i := strings.Index(u, "+"); i >= 0 && i < strings.Index(u, "://") {
				u = u[i+1:]
			}
			p, err := url.Parse(u)
			if err != nil || p.Hostname() == "" || seen[p.Hostname()] {
				continue
			}
			seen[p.Hostname()] = true
			hosts = append(hosts, p.Hostname())
		}
	}
	return hosts
}

// aptUpgrade is one package a full-upgrade would install, upgrade or remove.
type aptUpgrade struct{ Name, From, To string }

// parseAptSimulation reads `apt-get -s full-upgrade`: "Inst NAME [OLD] (NEW …)" and "Remv NAME [OLD]" lines.
func parseAptSimulation(out string) []aptUpgrade {
	var ups []aptUpgrade
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "Inst" && f[0] != "Remv") {
			continue
		}
		u := aptUpgrade{Name: f[1]}
		rest := f[2:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			u.From = strings.Trim(rest[0], "[]")
			rest = rest[1:]
		}
		if f[0] == "Remv" {
			u.To = "(removed)"
		} else if len(rest) > 0 && strings.HasPrefix(rest[0], "(") {
			u.To = strings.TrimPrefix(rest[0], "(")
		}
		ups = append(ups, u)
	}
	return ups
}

// renderPackages lists packages one per line ("NAME VERSION"), for a before/after diff.
func renderPackages(ups []aptUpgrade, after bool) string {
	var b strings.Builder
	for _, u := range ups {
		v := u.From
		if after {
			v = u.To
		}
		if v == "" {
			v = "(not installed)"
		}
		fmt.Fprintf(&b, "%s %s\n", u.Name, v)
	}
	return b.String()
}

// pkgInstalled asks dpkg whether a package is installed; a missing dpkg-query means no.
func pkgInstalled(ctx context.Context, h *system.Host, name string) (bool, error) {
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"dpkg-query", "-W", "-f=${db:Status-Status}", name}})
	if err != nil {
		if isNotFound(err) || system.ExitCode(err) == 1 { // exit 1: "no packages found matching"
			return false, nil
		}
		return false, fmt.Errorf("dpkg-query -W %s: %s", name, cmdOutput(err))
	}
	return strings.TrimSpace(string(out)) == "installed", nil
}

// aptConfig reads `apt-config dump` into key → value ("APT::Periodic::Unattended-Upgrade" → "1").
func aptConfig(ctx context.Context, h *system.Host) (map[string]string, error) {
	out, err := h.Read(ctx, "apt-config", "dump")
	if err != nil {
		return nil, fmt.Errorf("apt-config dump: %s", cmdOutput(err))
	}
	return parseAptConfigDump(string(out)), nil
}

func parseAptConfigDump(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		m[k] = strings.Trim(strings.TrimSuffix(strings.TrimSpace(v), ";"), `"`)
	}
	return m
}

// periodicKeys must both be "1" for unattended-upgrades to run daily.
var periodicKeys = []string{"APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"}

// periodicOverrides names the apt.conf.d files that set a periodic key to something other than "1", for a
// note when the effective value is wrong although 20auto-upgrades is right.
func periodicOverrides(h *system.Host) []string {
	files, _ := h.Glob("/etc/apt/apt.conf.d/*")
	var out []string
	for _, f := range files {
		if f == autoUpgrades {
			continue
		}
		data, err := h.ReadFile(f)
		if err != nil {
			continue
		}
		for _, k := range periodicKeys {
			if re := regexp.MustCompile(regexp.QuoteMeta(k) + `\s+"([^"]*)"`); re.Match(data) {
				if m := re.FindSubmatch(data); m != nil && string(m[1]) != "1" {
					out = append(out, fmt.Sprintf("%s sets %s to %q", f, k, m[1]))
				}
			}
		}
	}
	return out
}

// listsAge says when the package lists were last refreshed, for the plan's note.
func listsAge(h *system.Host) string {
	st, err := h.Stat(aptListsDir)
	if err != nil {
		return "never"
	}
	return st.ModTime().UTC().Format(time.RFC3339)
}
