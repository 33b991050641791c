package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// SSHStep is Step 0: SSH with keys only, without locking the operator out.
//
// It writes one drop-in, /etc/ssh/sshd_config.d/00-openclaw-harden.conf, and compares with the EFFECTIVE
// configuration (`sshd -T`), never with the text of sshd_config. Decisions worth knowing:
//
//   - sshd keeps the first value it reads. The drop-in only wins when /etc/ssh/sshd_config includes
//     sshd_config.d/*.conf before it sets any of the four keys (Debian's default). When it does not, the
//     step refuses and says which line to add or move. It does not add the Include itself: that would also
//     switch on every other file in sshd_config.d, which sshd ignored until then, and the plan could not
//     show what those files would change.
//   - A Match block that sets one of the four keys to another value overrides the drop-in for the
//     connections it matches: refused too, naming the file and line.
//   - Validation: `sshd -t -f TEMP` checks the new file alone before it is moved in (with this machine's host
//     keys, so a fragment without HostKey lines validates), then `sshd -t` checks the whole configuration
//     as sshd will read it. If that fails the previous drop-in is put back (or the new one removed) and
//     sshd is not reloaded.
//   - `systemctl reload ssh.service`, never restart: open sessions stay up.
//   - Lockout sshGuardCheck: the admin user (answers admin_user, else SUDO_USER, else the owner of this login
//     session, else the only non-root member of group sudo) must be non-root, able to sudo, and have a key
//     in authorized_keys (else Blocked); a publickey login for that user with one of those keys must have
//     been seen (this session, or the sshd journal), else the plan carries a Risk the operator must accept.
type SSHStep struct {
	// client replaces the SSH client checks in unit tests; nil means the real one (system/ssh.go).
	client sshClient
}

// sshClient is the part of system the client-side checks use.
type sshClient interface {
	ProbeAuth(ctx context.Context, h *system.Host, t system.SSHTarget, user string) (system.SSHAuthProbe, error)
	Login(ctx context.Context, h *system.Host, t system.SSHTarget, user string, keys system.SSHKeySet) ([]string, error)
	AgentKeys(sock string) (system.SSHKeySet, func(), error)
	ThrowawayKey() (system.SSHKeySet, error)
}

type realSSHClient struct{}

func (realSSHClient) ProbeAuth(ctx context.Context, h *system.Host, t system.SSHTarget, user string) (system.SSHAuthProbe, error) {
	return h.SSHProbeAuth(ctx, t, user)
}
func (realSSHClient) Login(ctx context.Context, h *system.Host, t system.SSHTarget, user string, k system.SSHKeySet) ([]string, error) {
	return h.SSHLogin(ctx, t, user, k)
}
func (realSSHClient) AgentKeys(sock string) (system.SSHKeySet, func(), error) {
	return system.AgentKeys(sock)
}
func (realSSHClient) ThrowawayKey() (system.SSHKeySet, error) { return system.ThrowawayKey() }

func (s SSHStep) ssh() sshClient {
	if s.client != nil {
		return s.client
	}
	return realSSHClient{}
}

const (
	sshdConfigPath = "/etc/ssh/sshd_config"
	sshdConfigDir  = "/etc/ssh"
	sshdUnit       = "ssh.service"
	sshdDropinPath = assets.SSHDDropinPath
	// sshdTimeout bounds each sshd/journalctl call: a hung tool must not hang the wizard.
	sshdTimeout = 30 * time.Second
	// sshJournalLines is how much of the sshd journal the lockout guard reads (newest first): enough for weeks of
	// logins on a quiet VM without reading gigabytes on one that was brute-forced while passwords were on.
	sshJournalLines = "20000"
	sshAuthLog      = "/var/log/auth.log"
)

func (SSHStep) ID() int       { return 0 }
func (SSHStep) Title() string { return "Secure VM access (SSH keys only)" }

// sshdSetting is one key of the drop-in and the value it sets, lower case as `sshd -T` prints it.
type sshdSetting struct{ Key, Value string }

// wantedSSHD reads the four settings from the embedded drop-in, so the template is the one source.
func wantedSSHD() []sshdSetting {
	var out []sshdSetting
	for _, line := range strings.Split(assets.SSHDDropin(), "\n") {
		k, v := sshdKeyValue(line)
		if k != "" {
			out = append(out, sshdSetting{k, strings.ToLower(v)})
		}
	}
	return out
}

// sshdKeyValue splits a config line into its lower-case keyword and first argument ("" for comments).
// sshd accepts "Key value" and "Key=value".
func sshdKeyValue(line string) (key, value string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", ""
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), ""
	}
	key = strings.ToLower(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		if j := strings.Index(rest[1:], `"`); j >= 0 {
			return key, rest[1 : j+1]
		}
	}
	if f := strings.Fields(rest); len(f) > 0 {
		return key, f[0]
	}
	return key, ""
}

// sshdEffective is `sshd -T` output: every key (lower case) with every value in the order printed.
type sshdEffective map[string][]string

func (e sshdEffective) get(k string) string {
	if v := e[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseSSHDEffective(out string) sshdEffective {
	e := sshdEffective{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		k = strings.ToLower(k)
		e[k] = append(e[k], strings.TrimSpace(v))
	}
	return e
}

// readEffective runs `sshd -T`, or `sshd -T -C SPEC` for the settings one connection gets (Match blocks).
func readEffective(ctx context.Context, h *system.Host, spec string) (sshdEffective, error) {
	argv := []string{"sshd", "-T"}
	if spec != "" {
		argv = append(argv, "-C", spec)
	}
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: argv, Timeout: sshdTimeout})
	if err != nil {
		if isNotFound(err) {
			return nil, errors.New("sshd is not installed (package openssh-server): there is no SSH server to harden")
		}
		return nil, fmt.Errorf("%s failed (exit status %d): %s%s", system.ShellQuote(argv), system.ExitCode(err), cmdOutput(err), sshdTHint(err))
	}
	e := parseSSHDEffective(string(out))
	if len(e) == 0 {
		return nil, fmt.Errorf("%s printed nothing", system.ShellQuote(argv))
	}
	return e, nil
}

// sshdTHint says what a failed `sshd -T` means for the two failures seen on real machines: not root, and
// an sshd that has not started since the boot (it creates /run/sshd when it starts; -T refuses without it).
func sshdTHint(err error) string {
	out := cmdOutput(err)
	switch {
	case strings.Contains(out, "Missing privilege separation directory"):
		return "; sshd has not run since this boot (it creates /run/sshd when it starts): start it with `systemctl start ssh`, then run this again"
	case strings.Contains(out, "Permission denied"):
		return "; sshd -T needs root"
	}
	return ""
}

// renderEffective is the four settings as `sshd -T` prints them, in the drop-in's order.
func renderEffective(e sshdEffective) string {
	var b strings.Builder
	for _, w := range wantedSSHD() {
		v := e.get(w.Key)
		if v == "" {
			v = "(not printed by sshd -T)"
		}
		fmt.Fprintf(&b, "%s %s\n", w.Key, v)
	}
	return b.String()
}

func renderWanted() string {
	var b strings.Builder
	for _, w := range wantedSSHD() {
		fmt.Fprintf(&b, "%s %s\n", w.Key, w.Value)
	}
	return b.String()
}

// ---- the configuration as sshd reads it (for the Include and Match checks) ----

// sshdLine is one setting of the configuration, in the order sshd reads it.
type sshdLine struct {
	File    string
	Line    int
	Key     string // lower case
	Value   string // first argument
	InMatch bool   // inside a Match block: applies only to the connections it matches
}

// sshdConfig is the configuration as sshd reads it.
type sshdConfig struct {
	Lines []sshdLine
	Match bool // some file has a Match block: connections may get other values than `sshd -T` shows
}

// sshdArgs is every argument after the keyword of a config line ("Include a b", "Include=a").
func sshdArgs(line string) []string {
	line = strings.TrimSpace(line)
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return nil
	}
	rest := strings.TrimSpace(line[i:])
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "="))
	var out []string
	for _, f := range strings.Fields(rest) {
		out = append(out, strings.Trim(f, `"`))
	}
	return out
}

// readSSHDConfig flattens sshd_config and its Includes in sshd's reading order (glob results sorted;
// relative patterns under /etc/ssh; a Match block ends at the end of the file it is in), with the drop-in
// read as it WILL be (the wanted content) wherever an Include pattern matches its path, present or not.
func readSSHDConfig(h *system.Host) (sshdConfig, error) {
	var c sshdConfig
	var read func(file string, inMatch bool, depth int) error
	read = func(file string, inMatch bool, depth int) error {
		if depth > 16 {
			return fmt.Errorf("%s: Includes nested more than 16 deep", file)
		}
		var data string
		if file == sshdDropinPath {
			data = assets.SSHDDropin()
		} else {
			b, err := h.ReadFile(file)
			if err != nil {
				if depth > 0 && errors.Is(err, fs.ErrNotExist) {
					return nil // a file that vanished between glob and read
				}
				return fmt.Errorf("reading %s: %w", file, err)
			}
			data = string(b)
		}
		for i, raw := range strings.Split(data, "\n") {
			k, v := sshdKeyValue(raw)
			switch k {
			case "":
				continue
			case "match":
				inMatch, c.Match = true, true
				continue
			case "include":
				for _, pat := range sshdArgs(raw) {
					if !strings.HasPrefix(pat, "/") {
						pat = path.Join(sshdConfigDir, pat)
					}
					files, err := h.Glob(pat)
					if err != nil {
						return fmt.Errorf("%s:%d: Include %s: %w", file, i+1, pat, err)
					}
					if ok, _ := path.Match(pat, sshdDropinPath); ok && !slices.Contains(files, sshdDropinPath) {
						files = append(files, sshdDropinPath)
					}
					sort.Strings(files)
					for _, f := range files {
						if err := read(f, inMatch, depth+1); err != nil {
							return err
						}
					}
				}
				continue
			}
			c.Lines = append(c.Lines, sshdLine{File: file, Line: i + 1, Key: k, Value: v, InMatch: inMatch})
		}
		return nil
	}
	return c, read(sshdConfigPath, false, 0)
}

// sshIncludeFix is what the operator types when sshd_config does not read sshd_config.d first.
const sshIncludeFix = "sudo sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config"

// checkSSHDConfigOrder says, in one sentence, why the drop-in would not decide the four settings (or "").
func checkSSHDConfigOrder(lines []sshdLine) string {
	ours := false
	for _, l := range lines {
		if l.File == sshdDropinPath && !l.InMatch {
			ours = true
		}
	}
	if !ours {
		return fmt.Sprintf("%s does not include %s/*.conf outside a Match block, so sshd would never read the drop-in; "+
			"add the line \"Include /etc/ssh/sshd_config.d/*.conf\" at the top of %s (Debian's default has it) and plan again",
			sshdConfigPath, path.Dir(sshdDropinPath), sshdConfigPath)
	}
	for _, w := range wantedSSHD() {
		for _, l := range lines {
			if l.Key != w.Key || l.InMatch {
				continue
			}
			if l.File != sshdDropinPath {
				return fmt.Sprintf("%s:%d sets %s before the drop-in is read, and sshd keeps the first value it reads, "+
					"so the drop-in could not change it; delete that line or move it below the Include of sshd_config.d, then plan again",
					l.File, l.Line, sshdCanonicalKey(w.Key))
			}
			break
		}
	}
	for _, l := range lines {
		if !l.InMatch {
			continue
		}
		for _, w := range wantedSSHD() {
			if l.Key == w.Key && !strings.EqualFold(l.Value, w.Value) {
				return fmt.Sprintf("%s:%d sets %s %s inside a Match block, which overrides the drop-in for every connection "+
					"the block matches; remove that line (or make it %s %s) and plan again",
					l.File, l.Line, sshdCanonicalKey(w.Key), l.Value, sshdCanonicalKey(w.Key), w.Value)
			}
		}
	}
	return ""
}

// sshdCanonicalKey is the keyword as the documentation spells it.
func sshdCanonicalKey(k string) string {
	for _, line := range strings.Split(assets.SSHDDropin(), "\n") {
		line = strings.TrimSpace(line)
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], k) {
			return f[0]
		}
	}
	return k
}

// ---- who the operator is, and what proves their key works ----

// sshConnection is the SSH_CONNECTION of the session the tool runs in: "client-ip client-port server-ip server-port".
type sshConnection struct{ ClientIP, ClientPort, ServerIP, ServerPort string }

func parseSSHConnection(s string) (sshConnection, bool) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return sshConnection{}, false
	}
	return sshConnection{f[0], f[1], f[2], f[3]}, true
}

// sshSessionEnv finds an environment variable of the SSH session the tool was started from: its own
// environment, else that of its parent processes (sudo drops SSH_CONNECTION and SSH_AUTH_SOCK, but the
// login shell that ran sudo still has them). It returns the value and where it was found.
func sshSessionEnv(h *system.Host, key string) (string, string) {
	if v := h.Getenv(key); v != "" {
		return v, "environment"
	}
	pid := os.Getppid()
	for i := 0; i < 32 && pid > 1; i++ {
		if env, err := h.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil {
			for _, kv := range strings.Split(string(env), "\x00") {
				if v, ok := strings.CutPrefix(kv, key+"="); ok && v != "" {
					return v, fmt.Sprintf("process %d", pid)
				}
			}
		}
		stat, err := h.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		// "PID (comm) STATE PPID …": comm may hold spaces and parentheses, so cut at the last ")".
		rest := string(stat)
		if j := strings.LastIndexByte(rest, ')'); j >= 0 {
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		next, err := strconv.Atoi(f[1])
		if err != nil || next == pid {
			break
		}
		pid = next
	}
	return "", ""
}

// sshPasswd is one getent passwd line.
type sshPasswd struct {
	Name string
	UID  int
	Home string
}

func sshGetentPasswd(ctx context.Context, h *system.Host, key string) (sshPasswd, bool, error) {
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"getent", "passwd", key}, Timeout: sshdTimeout})
	if err != nil {
		if system.ExitCode(err) == 2 { // getent: key not found
			return sshPasswd{}, false, nil
		}
		return sshPasswd{}, false, fmt.Errorf("getent passwd %s: %s", key, cmdOutput(err))
	}
	f := strings.Split(strings.TrimSpace(firstLine(string(out))), ":")
	if len(f) < 7 {
		return sshPasswd{}, false, fmt.Errorf("getent passwd %s printed %q", key, strings.TrimSpace(string(out)))
	}
	uid, err := strconv.Atoi(f[2])
	if err != nil {
		return sshPasswd{}, false, fmt.Errorf("getent passwd %s: uid %q", key, f[2])
	}
	return sshPasswd{Name: f[0], UID: uid, Home: f[5]}, true, nil
}

// sshAdminUser finds the admin user: answers admin_user, else SUDO_USER, else the owner of this login session
// (its audit login uid, which survives sudo and su), else the only non-root member of group sudo.
func sshAdminUser(ctx context.Context, h *system.Host, a Answers) (name, how string) {
	if a.AdminUser != "" {
		return a.AdminUser, "admin_user in the answers"
	}
	if u := h.Getenv("SUDO_USER"); u != "" && u != "root" {
		return u, "SUDO_USER (the tool runs under sudo)"
	}
	if b, err := h.ReadFile("/proc/self/loginuid"); err == nil {
		if uid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && uid > 0 && uid != 4294967295 {
			if e, ok, _ := sshGetentPasswd(ctx, h, strconv.Itoa(uid)); ok && e.UID != 0 {
				return e.Name, "the owner of this login session"
			}
		}
	}
	if out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"getent", "group", "sudo"}, Timeout: sshdTimeout}); err == nil {
		f := strings.Split(strings.TrimSpace(firstLine(string(out))), ":")
		if len(f) == 4 {
			var members []string
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" && m != "root" {
					members = append(members, m)
				}
			}
			if len(members) == 1 {
				return members[0], "the only member of group sudo"
			}
		}
	}
	return "", ""
}

// sshCanSudo reports whether user can administer the machine once root logins are off, and how we know.
func sshCanSudo(ctx context.Context, h *system.Host, user string) (bool, string) {
	if out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"id", "-nG", user}, Timeout: sshdTimeout}); err == nil {
		for _, g := range strings.Fields(string(out)) {
			if g == "sudo" {
				return true, "member of group sudo"
			}
		}
	}
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"sudo", "-n", "-l", "-U", user}, Timeout: sshdTimeout})
	if err == nil && strings.Contains(string(out), "may run the following commands") {
		return true, "sudo rights in sudoers (sudo -l -U " + user + ")"
	}
	return false, ""
}

// authorizedKeyFiles expands sshd's AuthorizedKeysFile for a user (%h, %u, %U, %%; relative to home).
func authorizedKeyFiles(eff sshdEffective, u sshPasswd) []string {
	spec := eff["authorizedkeysfile"]
	var files []string
	for _, v := range spec {
		for _, f := range strings.Fields(v) {
			if strings.EqualFold(f, "none") {
				continue
			}
			f = strings.NewReplacer("%%", "%", "%h", u.Home, "%u", u.Name, "%U", strconv.Itoa(u.UID)).Replace(f)
			if !strings.HasPrefix(f, "/") {
				f = path.Join(u.Home, f)
			}
			files = append(files, f)
		}
	}
	if len(spec) == 0 {
		files = []string{path.Join(u.Home, ".ssh/authorized_keys"), path.Join(u.Home, ".ssh/authorized_keys2")}
	}
	return files
}

// acceptedLogin is one "Accepted publickey for USER from IP port P ssh2: TYPE SHA256:…" line of sshd's log.
type acceptedLogin struct {
	User, IP, Port, Key string // Key is "ED25519 SHA256:…" when logged
	Text                string
}

// The "Accepted publickey" line must start the message: the whole message for the journal (-o cat), right
// after the syslog header (which has no bracket before "sshd[PID]: ") for auth.log. So attacker-chosen text
// in another message, such as a user name "Accepted publickey for admin …" in an "Invalid user" line, can
// never pass for a login.
const acceptedPat = `(Accepted publickey for (\S+) from (\S+) port (\d+) ssh2(?:: (\S+ SHA256:[A-Za-z0-9+/=]+))?)`

var (
	acceptedJournalRE = regexp.MustCompile(`^` + acceptedPat)
	acceptedSyslogRE  = regexp.MustCompile(`^[^\[\]]* sshd(?:-session)?\[\d+\]: ` + acceptedPat)
)

// parseAcceptedLogins finds the key logins in sshd's log: journal messages, or auth.log lines when syslog.
func parseAcceptedLogins(log string, syslog bool) []acceptedLogin {
	re := acceptedJournalRE
	if syslog {
		re = acceptedSyslogRE
	}
	var out []acceptedLogin
	for _, line := range strings.Split(log, "\n") {
		m := re.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		out = append(out, acceptedLogin{Text: m[1], User: m[2], IP: m[3], Port: m[4], Key: m[5]})
	}
	return out
}

// sshdLog reads what sshd logged: the journal of ssh.service, else /var/log/auth.log (root-only writable).
//
// Only root's entries count (_UID=0, a field journald sets itself): when logins get no session scope of
// their own, everything a logged-in user runs is journaled under ssh.service too, so a user could otherwise
// `logger "Accepted publickey for admin …"` and pass for the admin's key login. sshd logs "Accepted" from
// its privileged (root) process.
func sshdLog(ctx context.Context, h *system.Host) (string, string) {
	argv := []string{"journalctl", "-u", sshdUnit, "_UID=0", "--no-pager", "-o", "cat", "-n", sshJournalLines}
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: argv, Timeout: sshdTimeout})
	if err == nil && len(out) > 0 {
		return string(out), "the journal of " + sshdUnit
	}
	if b, err := h.ReadFile(sshAuthLog); err == nil {
		return string(b), sshAuthLog
	}
	return "", ""
}

// sshCurrentConn is the SSH connection the tool runs in, when it runs in one.
func sshCurrentConn(h *system.Host) (sshConnection, bool) {
	v, _ := sshSessionEnv(h, "SSH_CONNECTION")
	return parseSSHConnection(v)
}

// sshKeyEvidence is what authorizes a user's key logins and what shows one worked.
type sshKeyEvidence struct {
	KeyFiles  []string
	Keys      []system.AuthorizedKey
	Login     *acceptedLogin // a publickey login for the user with one of Keys; nil when none was logged
	ThisConn  bool           // Login is the session the tool runs in
	Stale     int            // key logins logged for the user with keys no longer authorized
	LogSource string         // where the log was read ("" when no log could be read)
	Notes     []string
}

// findSSHKeyEvidence reads the user's authorized keys (AuthorizedKeysFile as sshd resolves it for them) and
// the sshd log's key logins for the user that used one of those keys.
func findSSHKeyEvidence(ctx context.Context, h *system.Host, u sshPasswd, ueff sshdEffective, conn sshConnection, hasConn bool) sshKeyEvidence {
	var ev sshKeyEvidence
	ev.KeyFiles = authorizedKeyFiles(ueff, u)
	for _, f := range ev.KeyFiles {
		b, err := h.ReadFile(f)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				ev.Notes = append(ev.Notes, fmt.Sprintf("Could not read %s: %v.", f, err))
			}
			continue
		}
		keys, bad := system.ParseAuthorizedKeys(b)
		ev.Keys = append(ev.Keys, keys...)
		if bad > 0 {
			ev.Notes = append(ev.Notes, fmt.Sprintf("%s has %d line(s) that are not keys; sshd ignores them.", f, bad))
		}
	}
	if cmd := ueff.get("authorizedkeyscommand"); cmd != "" && cmd != "none" {
		ev.Notes = append(ev.Notes, fmt.Sprintf("sshd also takes keys from AuthorizedKeysCommand %s; only the keys in files were counted.", cmd))
	}
	if len(ev.Keys) == 0 {
		return ev
	}
	authorized := map[string]bool{}
	for _, k := range ev.Keys {
		authorized[k.Fingerprint] = true
	}
	log, src := sshdLog(ctx, h)
	ev.LogSource = src
	for _, l := range parseAcceptedLogins(log, src == sshAuthLog) {
		if l.User != u.Name {
			continue
		}
		if l.Key != "" && !authorized[l.Key[strings.LastIndexByte(l.Key, ' ')+1:]] {
			ev.Stale++
			continue
		}
		l := l
		this := hasConn && l.IP == conn.ClientIP && l.Port == conn.ClientPort
		if this || !ev.ThisConn { // the session's own line wins; otherwise the newest line
			ev.Login, ev.ThisConn = &l, this
		}
	}
	return ev
}

// sshAdminAddr is where the admin connects from, for `sshd -T -C`: this session's client, else a single
// admin_source address, else the address of the key login that was seen.
func sshAdminAddr(conn sshConnection, hasConn bool, a Answers, login *acceptedLogin) string {
	if hasConn {
		return conn.ClientIP
	}
	if src := strings.TrimSuffix(a.AdminSource, "/32"); src != "" {
		if ip := net.ParseIP(src); ip != nil {
			return ip.String()
		}
	}
	if login != nil {
		return login.IP
	}
	return ""
}

func sshMatchSpec(user, addr string) string {
	if user == "" || addr == "" {
		return ""
	}
	return fmt.Sprintf("user=%s,host=%s,addr=%s", user, addr, addr)
}

// sshUserEffective is the configuration sshd applies to user's connections from addr (Match blocks), or the
// global one when there are no Match blocks or no address to ask about.
func sshUserEffective(ctx context.Context, h *system.Host, global sshdEffective, match bool, user, addr string) sshdEffective {
	if spec := sshMatchSpec(user, addr); match && spec != "" {
		if e, err := readEffective(ctx, h, spec); err == nil {
			return e
		}
	}
	return global
}

// sshGuard is what the lockout sshGuardCheck found: Blocked (one sentence) or Risk, and notes for the operator.
type sshGuard struct {
	sshKeyEvidence
	Blocked, Risk string
	Notes         []string
}

// sshKeyCommands are the profile's commands to create and install a key, for user at the VM's address.
func sshKeyCommands(user, vmIP string) []string {
	vmIP = sshOr(vmIP, "<vm-ip>")
	return []string{
		`On your own machine: ssh-keygen -t ed25519 -C "openclaw-vm" -f ~/.ssh/openclaw_vm`,
		fmt.Sprintf("Then: ssh-copy-id -i ~/.ssh/openclaw_vm.pub %s@%s", user, vmIP),
		fmt.Sprintf("Then log in with the key and run this step again from that session: ssh -i ~/.ssh/openclaw_vm %s@%s", user, vmIP),
	}
}

// sshGuardCheck is the lockout pre-flight: the admin user is non-root, can sudo and has a key (else Blocked), and a
// key login for them with one of those keys was seen (else Risk).
func sshGuardCheck(ctx context.Context, h *system.Host, a Answers, eff sshdEffective, match bool, user, how string) (sshGuard, error) {
	var g sshGuard
	conn, hasConn := sshCurrentConn(h)
	vmIP := ""
	if hasConn {
		vmIP = conn.ServerIP
	}
	if user == "" {
		g.Blocked = "no admin user found (no admin_user in the answers, no SUDO_USER, no single member of group sudo); " +
			"set admin_user in the answers to the non-root sudo user you log in as, and plan again"
		return g, nil
	}
	e, ok, err := sshGetentPasswd(ctx, h, user)
	if err != nil {
		return g, err
	}
	if !ok {
		g.Blocked = fmt.Sprintf("the admin user %q (from %s) does not exist on this machine; create it or set admin_user in the answers, and plan again", user, how)
		return g, nil
	}
	if e.UID == 0 {
		g.Blocked = fmt.Sprintf("the admin user %q (from %s) is root, and this step turns root logins off; "+
			"log in as a non-root sudo user (or set admin_user) and plan again", user, how)
		return g, nil
	}
	sudo, sudoHow := sshCanSudo(ctx, h, user)
	if !sudo {
		g.Blocked = fmt.Sprintf("the admin user %s cannot use sudo, so with root logins off nobody could administer this machine; "+
			"run \"usermod -aG sudo %s\" and plan again", user, user)
		return g, nil
	}
	ueff := sshUserEffective(ctx, h, eff, match, user, sshAdminAddr(conn, hasConn, a, nil))
	g.sshKeyEvidence = findSSHKeyEvidence(ctx, h, e, ueff, conn, hasConn)
	g.Notes = append(g.Notes, fmt.Sprintf("Admin user: %s (found via %s; %s).", user, how, sudoHow))
	g.Notes = append(g.Notes, g.sshKeyEvidence.Notes...)
	if len(g.Keys) == 0 {
		g.Blocked = fmt.Sprintf("%s has no SSH key in %s, so switching passwords off would lock everyone out; "+
			"add a key with the commands below, log in with it, and plan again", user, strings.Join(g.KeyFiles, " or "))
		g.Notes = append(g.Notes, sshKeyCommands(user, vmIP)...)
		return g, nil
	}
	labels := make([]string, len(g.Keys))
	for i, k := range g.Keys {
		labels[i] = k.Label()
	}
	g.Notes = append(g.Notes, fmt.Sprintf("Keys of %s: %d (%s).", user, len(g.Keys), strings.Join(labels, ", ")))
	switch {
	case g.Login != nil && g.ThisConn:
		g.Notes = append(g.Notes, fmt.Sprintf("Key login proven: this session logged in with a key (%s: %q).", g.LogSource, g.Login.Text))
	case g.Login != nil:
		g.Notes = append(g.Notes, fmt.Sprintf("Key login proven: %s shows %q.", g.LogSource, g.Login.Text))
	default:
		if g.Stale > 0 {
			g.Notes = append(g.Notes, fmt.Sprintf("%s shows %d key login(s) for %s, but with keys that are no longer in authorized_keys.", g.LogSource, g.Stale, user))
		}
		if g.LogSource == "" {
			g.Notes = append(g.Notes, "Neither journalctl nor /var/log/auth.log could be read, so no earlier key login can be shown.")
		}
		g.Risk = fmt.Sprintf("no key login for %s has been seen; if the key does not work you will be locked out once passwords are off", user)
		g.Notes = append(g.Notes, fmt.Sprintf("To remove this risk, log in as %s with the key (ssh -i ~/.ssh/openclaw_vm %s@%s) and run this step from that session.",
			user, user, sshOr(vmIP, "<vm-ip>")))
	}
	return g, nil
}

func sshOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ---- plan ----

// sshPlan is what Plan hands to Apply.
type sshPlan struct {
	Content   string   // the drop-in to write
	Validate  []string // argv for the temp file
	Write     bool     // the drop-in differs
	Reload    bool     // sshd must be reloaded (drop-in written, or the running daemon is behind its files)
	AdminUser string
}

// sshValidateArgv checks the new drop-in on its own, with this machine's host keys so a fragment without
// HostKey lines does not fail for want of one.
func sshValidateArgv(eff sshdEffective) []string {
	argv := []string{"sshd", "-t", "-f", "%s"}
	for _, k := range eff["hostkey"] {
		argv = append(argv, "-o", "HostKey="+k)
	}
	return argv
}

var sshGrepKeys = "sudo sshd -T | grep -Ei '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|pubkeyauthentication) '"

func sshCommands(content string) []string {
	return []string{
		"sudo tee " + sshdDropinPath + " >/dev/null <<'EOF'\n" + content + "EOF",
		"sudo sshd -t",
		"sudo systemctl reload " + sshdUnit,
		sshGrepKeys,
	}
}

// Plan is read-only: it reads the effective configuration, the drop-in, the admin user's keys and the sshd
// log, and probes the running sshd on loopback without sending any credential.
func (s SSHStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	content := assets.SSHDDropin()
	p := Plan{Step: 0, Title: s.Title(), Commands: sshCommands(content)}
	eff, err := readEffective(ctx, h, "")
	if err != nil {
		return p, err
	}
	before := ""
	switch b, err := h.ReadFile(sshdDropinPath); {
	case err == nil:
		before = string(b)
	case !errors.Is(err, fs.ErrNotExist):
		return p, fmt.Errorf("reading %s: %w", sshdDropinPath, err)
	}
	cfg, err := readSSHDConfig(h)
	if err != nil {
		return p, err
	}
	sp := sshPlan{Content: content, Validate: sshValidateArgv(eff), Write: before != content}
	file := Change{Target: sshdDropinPath, Kind: "file", Before: before, After: content, Validate: sp.Validate, Mode: 0o644,
		Warning: "ends password, keyboard-interactive and root logins over SSH; open sessions stay up"}
	effChange := Change{Target: "sshd effective settings (sshd -T)", Kind: "setting", Before: renderEffective(eff), After: renderWanted()}
	p.Changes = []Change{file, effChange}
	if order := checkSSHDConfigOrder(cfg.Lines); order != "" {
		p.Blocked = order
		if strings.Contains(order, "does not include") {
			p.Notes = append(p.Notes, "To fix it: "+sshIncludeFix)
		}
	}

	user, how := sshAdminUser(ctx, h, a)
	conn, hasConn := sshCurrentConn(h)
	if cfg.Match {
		if spec := sshMatchSpec(user, sshAdminAddr(conn, hasConn, a, nil)); spec != "" {
			ue, err := readEffective(ctx, h, spec)
			if err != nil {
				return p, err
			}
			p.Changes = append(p.Changes, Change{Target: "sshd effective settings for " + spec + " (sshd -T -C)", Kind: "setting",
				Before: renderEffective(ue), After: renderWanted()})
			p.Commands = append(p.Commands, strings.Replace(sshGrepKeys, "sshd -T", "sshd -T -C "+spec, 1))
		}
		p.Notes = append(p.Notes, "The sshd configuration has Match blocks; the effective values were also read for the admin's connection (sshd -T -C).")
	}
	// Files and effective values already right: is the running daemon behind them (not reloaded)?
	if p.Empty() && p.Blocked == "" {
		probeUser := sshOr(user, "root")
		probe, err := s.ssh().ProbeAuth(ctx, h, sshTarget(h, eff), probeUser)
		switch {
		case err != nil:
			p.Notes = append(p.Notes, fmt.Sprintf("Could not ask the running sshd which logins it offers (%v); verification will try again.", err))
		case probe.NoneAccepted || !sshOnlyPublickey(probe.Methods):
			sp.Reload = true
			p.Changes = append(p.Changes, Change{Target: sshdUnit + " (the running sshd)", Kind: "service",
				Before: "offers " + probeUser + ": " + sshDescribeMethods(probe) + "\n", After: "offers " + probeUser + ": publickey\n",
				Warning: "the files are right but the running sshd was not reloaded since they changed"})
		}
	}
	sp.Reload = sp.Reload || sp.Write
	sp.AdminUser = user
	if !p.Empty() && p.Blocked == "" {
		// Something will change: the lockout sshGuardCheck decides whether it may.
		g, err := sshGuardCheck(ctx, h, a, eff, cfg.Match, user, how)
		if err != nil {
			return p, err
		}
		p.Notes = append(p.Notes, g.Notes...)
		p.Blocked, p.Risk = g.Blocked, g.Risk
		if p.Blocked != "" {
			p.Risk = ""
		}
	}
	if p.Blocked == "" && strings.Contains(effChange.Before, "passwordauthentication yes") {
		for _, l := range cfg.Lines {
			if l.Key == "passwordauthentication" && strings.EqualFold(l.Value, "yes") && l.File != sshdDropinPath {
				p.Notes = append(p.Notes, fmt.Sprintf("Passwords are on because of %s:%d; the drop-in sorts before it and wins.", l.File, l.Line))
				break
			}
		}
	}
	p.Data = sp
	return p, nil
}

func sshOnlyPublickey(methods []string) bool {
	return len(methods) == 1 && methods[0] == "publickey"
}

func sshDescribeMethods(p system.SSHAuthProbe) string {
	if p.NoneAccepted {
		return "no authentication at all"
	}
	if len(p.Methods) == 0 {
		return "nothing"
	}
	return strings.Join(p.Methods, ", ")
}

// sshTarget is where the running sshd can be reached from this machine, with its host keys pinned.
func sshTarget(h *system.Host, eff sshdEffective) system.SSHTarget {
	port := sshOr(eff.get("port"), "22")
	addr := net.JoinHostPort("127.0.0.1", port)
	if las := eff["listenaddress"]; len(las) > 0 {
		addr = ""
		for _, la := range las {
			host, p, err := net.SplitHostPort(la)
			if err != nil {
				continue
			}
			ip := net.ParseIP(host)
			switch {
			case ip == nil:
			case ip.IsUnspecified() && ip.To4() != nil:
				addr = net.JoinHostPort("127.0.0.1", p)
			case ip.IsUnspecified():
				if addr == "" {
					addr = net.JoinHostPort("::1", p)
				}
			case ip.IsLoopback():
				addr = net.JoinHostPort(host, p)
			default:
				if addr == "" {
					addr = net.JoinHostPort(host, p)
				}
			}
			if strings.HasPrefix(addr, "127.") {
				break
			}
		}
		if addr == "" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	t := system.SSHTarget{Addr: addr, Timeout: 10 * time.Second}
	for _, k := range eff["hostkey"] {
		if b, err := h.ReadFile(k + ".pub"); err == nil {
			t.HostKeys = append(t.HostKeys, string(b))
		}
	}
	return t
}

// ---- apply ----

// Apply writes the drop-in (backed up, validated, atomic), checks the whole configuration with `sshd -t`
// (putting the old drop-in back if it fails) and reloads ssh.service.
func (SSHStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	sp, ok := p.Data.(sshPlan)
	if !ok {
		if p.Empty() {
			return nil
		}
		return errors.New("the Step 0 plan carries no drop-in; plan the step again")
	}
	if sp.Write {
		old, err := h.ReadFile(sshdDropinPath)
		existed := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", sshdDropinPath, err)
		}
		if err := h.WriteFile(ctx, sshdDropinPath, []byte(sp.Content), system.WriteOpts{Perm: 0o644, Validate: sp.Validate}); err != nil {
			return fmt.Errorf("writing %s: %w", sshdDropinPath, err)
		}
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"sshd", "-t"}, Timeout: sshdTimeout}); err != nil {
			var rerr error
			if existed {
				rerr = h.WriteFile(ctx, sshdDropinPath, old, system.WriteOpts{})
			} else {
				rerr = h.RemoveFile(sshdDropinPath)
			}
			if rerr != nil {
				return fmt.Errorf("sshd -t rejected the configuration with the new drop-in (%v), and putting the old %s back failed too (%v); "+
					"do not reload sshd, and run `openclaw-harden rollback --step 0`", cmdOutput(err), sshdDropinPath, rerr)
			}
			return fmt.Errorf("sshd -t rejected the configuration with the new drop-in, so the old %s was put back and sshd was not reloaded: %s",
				sshdDropinPath, cmdOutput(err))
		}
	}
	if sp.Reload {
		// reload, not restart: sshd re-reads its files and open sessions stay up.
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"systemctl", "reload", sshdUnit}, Timeout: sshdTimeout}); err != nil {
			return fmt.Errorf("reloading %s failed, so the running sshd still has its old settings: %s", sshdUnit, cmdOutput(err))
		}
	}
	return nil
}

// ---- verify ----

// sshRetry retries fn while sshd does not answer (a reload briefly refuses new connections).
func sshRetry(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := fn()
		if err == nil || errors.Is(err, system.ErrSSHAuthRefused) || errors.Is(err, system.ErrDryRun) ||
			time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Verify reads the effective values back (sshd -T, and sshd -T -C for the admin when there are Match
// blocks) and checks as a client would, on loopback: only publickey is offered, root is refused, and the
// admin's key logs in (with a key from an ssh-agent this session forwarded; otherwise the sshd log line of
// a key login is what proves it, and the check says so).
func (s SSHStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	eff, err := readEffective(ctx, h, "")
	if err != nil {
		return []Check{{ID: "step0.sshd", Name: "sshd configuration readable", Expect: "sshd -T succeeds", Got: "failed", Reason: err.Error()}}
	}
	var cs []Check

	dropin := Check{ID: "step0.dropin", Name: "drop-in " + sshdDropinPath, Expect: "the generated content"}
	switch b, err := h.ReadFile(sshdDropinPath); {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		dropin.Got, dropin.Reason = "absent", "Step 0 has not been applied (or the file was removed)"
	case err != nil:
		dropin.Got, dropin.Reason = "unreadable", err.Error()
	case string(b) == assets.SSHDDropin():
		dropin.Got, dropin.OK = "as generated", true
	default:
		dropin.Got, dropin.Reason = "changed by hand", "the file differs from what openclaw-harden writes; plan Step 0 to see the diff"
	}
	cs = append(cs, dropin)

	user, _ := sshAdminUser(ctx, h, a)
	conn, hasConn := sshCurrentConn(h)
	specs := []string{""}
	if cfg, err := readSSHDConfig(h); err == nil && cfg.Match {
		addr := sshAdminAddr(conn, hasConn, a, nil)
		for _, u := range []string{user, "root"} {
			if spec := sshMatchSpec(u, addr); spec != "" {
				specs = append(specs, spec)
			}
		}
	}
	effs := map[string]sshdEffective{"": eff}
	for _, spec := range specs[1:] {
		if e, err := readEffective(ctx, h, spec); err == nil {
			effs[spec] = e
		} else {
			cs = append(cs, Check{ID: "step0.effective.match", Name: "sshd -T -C " + spec, Expect: "succeeds", Got: "failed", Reason: err.Error()})
		}
	}
	for _, w := range wantedSSHD() {
		c := Check{ID: "step0.effective." + w.Key, Name: sshdCanonicalKey(w.Key) + " (effective, sshd -T)", Expect: w.Value, OK: true}
		var got, bad []string
		for _, spec := range specs {
			e, ok := effs[spec]
			if !ok {
				continue
			}
			v := e.get(w.Key)
			if spec == "" {
				got = append(got, v)
			} else {
				got = append(got, fmt.Sprintf("%s for %s", v, spec))
			}
			if !strings.EqualFold(v, w.Value) {
				c.OK = false
				bad = append(bad, sshOr(spec, "globally")+" it is "+sshOr(v, "unset"))
			}
		}
		c.Got = strings.Join(got, "; ")
		if !c.OK {
			c.Reason = strings.Join(bad, "; ")
		}
		cs = append(cs, c)
	}

	t := sshTarget(h, eff)
	pinned := "host key pinned"
	if len(t.HostKeys) == 0 {
		pinned = "host key not pinned: no readable .pub of the HostKey files"
	}
	probeUser := sshOr(user, "root")
	methods := Check{ID: "step0.client.methods", Name: fmt.Sprintf("logins offered to %s at %s", probeUser, t.Addr), Expect: "publickey only"}
	var probe system.SSHAuthProbe
	err = sshRetry(ctx, func() error {
		var e error
		probe, e = s.ssh().ProbeAuth(ctx, h, t, probeUser)
		return e
	})
	switch {
	case err != nil:
		methods.Got, methods.Reason = "no answer", err.Error()
	default:
		methods.Got = sshDescribeMethods(probe)
		methods.OK = !probe.NoneAccepted && sshOnlyPublickey(probe.Methods)
		if !methods.OK {
			methods.Reason = "the running sshd still accepts more than keys; reload it (systemctl reload ssh.service) or apply Step 0"
		}
		methods.Got += " (" + pinned + ")"
	}
	cs = append(cs, methods)

	agentKeys, closeAgent, agentErr := s.agent(h)
	defer closeAgent()

	root := Check{ID: "step0.client.root", Name: "root login over SSH refused", Expect: "refused"}
	throwaway, err := s.ssh().ThrowawayKey()
	if err != nil {
		root.Got, root.Reason = "not tried", err.Error()
	} else {
		tried := "a throwaway key"
		keys := throwaway
		if agentKeys.Len() > 0 {
			keys = throwaway.Union(agentKeys)
			tried = fmt.Sprintf("a throwaway key and %d key(s) from this session's ssh-agent", agentKeys.Len())
		}
		var offered []string
		err = sshRetry(ctx, func() error {
			var e error
			offered, e = s.ssh().Login(ctx, h, t, "root", keys)
			return e
		})
		switch {
		case err == nil:
			root.Got, root.Reason = "logged in as root with "+tried, "root can still log in over SSH; PermitRootLogin is not in force in the running sshd"
		case !errors.Is(err, system.ErrSSHAuthRefused):
			root.Got, root.Reason = "no answer", err.Error()
		case !sshOnlyPublickey(offered):
			root.Got = "refused, but root is offered " + strings.Join(offered, ", ")
			root.Reason = "a password prompt for root means root password logins may still work"
		default:
			root.Got, root.OK = "refused ("+tried+"; offered publickey only)", true
		}
	}
	cs = append(cs, root)

	cs = append(cs, s.keyLoginCheck(ctx, h, a, eff, t, user, agentKeys, agentErr))
	return cs
}

// agent connects to the ssh-agent of the session the tool runs in, when it forwarded one.
func (s SSHStep) agent(h *system.Host) (system.SSHKeySet, func(), error) {
	sock, _ := sshSessionEnv(h, "SSH_AUTH_SOCK")
	if sock == "" {
		return system.SSHKeySet{}, func() {}, errors.New("SSH_AUTH_SOCK is not set (no agent forwarded: connect with ssh -A to let the tool try the key)")
	}
	return s.ssh().AgentKeys(sock)
}

// keyLoginCheck proves the admin's key logs in: with the forwarded agent's keys when there are some,
// otherwise by the sshd log line of a key login with a key that is still authorized.
func (s SSHStep) keyLoginCheck(ctx context.Context, h *system.Host, a Answers, eff sshdEffective, t system.SSHTarget,
	user string, agentKeys system.SSHKeySet, agentErr error) Check {
	c := Check{ID: "step0.client.keylogin", Expect: "a key login succeeds"}
	if user == "" {
		c.Name, c.Got = "admin key login", "no admin user"
		c.Reason = "no admin user found; set admin_user in the answers"
		return c
	}
	c.Name = user + " key login"
	if agentKeys.Len() > 0 {
		err := sshRetry(ctx, func() error {
			_, e := s.ssh().Login(ctx, h, t, user, agentKeys)
			return e
		})
		if err == nil {
			c.Got, c.OK = fmt.Sprintf("logged in at %s with a key from this session's ssh-agent", t.Addr), true
			return c
		}
		c.Got, c.Reason = "failed with the ssh-agent's keys ("+strings.Join(agentKeys.Fingerprints(), ", ")+")", err.Error()
		return c
	}
	e, ok, err := sshGetentPasswd(ctx, h, user)
	if err != nil || !ok {
		c.Got, c.Reason = "unknown user", fmt.Sprintf("the admin user %s cannot be looked up: %v", user, err)
		return c
	}
	conn, hasConn := sshCurrentConn(h)
	match := false
	if cfg, err := readSSHDConfig(h); err == nil {
		match = cfg.Match
	}
	ev := findSSHKeyEvidence(ctx, h, e, sshUserEffective(ctx, h, eff, match, user, sshAdminAddr(conn, hasConn, a, nil)), conn, hasConn)
	switch {
	case len(ev.Keys) == 0:
		c.Got, c.Reason = "no key in "+strings.Join(ev.KeyFiles, " or "), user+" has no authorized key: nobody can log in as "+user
	case ev.Login == nil:
		c.Got = "not tried, and no key login seen in " + sshOr(ev.LogSource, "any sshd log")
		c.Reason = fmt.Sprintf("no key available to the tool (%v), and no key login for %s was logged", agentErr, user)
	default:
		c.Got = fmt.Sprintf("not tried (no key available to the tool: %v); relied on %s: %q, with a key still authorized", agentErr, ev.LogSource, ev.Login.Text)
		c.OK = true
	}
	return c
}
