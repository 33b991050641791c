package steps

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// HostStep is Step 2: the VM made boring on purpose. Updates and unattended-upgrades, IPv6 off (a sysctl
// drop-in), ~/.openclaw for the deploy user, and UFW denying by default in both directions with SSH in only
// from admin_source and the LAN and private ranges denied out before the allows. Default-deny outbound
// breaks apt sources on http:// and a resolver on the LAN; the step fixes both and proves name resolution
// and an HTTPS apt update still work afterwards.
type HostStep struct{}

func (HostStep) ID() int       { return 2 }
func (HostStep) Title() string { return "Host OS hardening (updates, IPv6 off, UFW)" }

const (
	ipv6DropIn  = "/etc/sysctl.d/99-openclaw-disable-ipv6.conf"
	openclawDir = ".openclaw"
)

var ipv6Sysctls = []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"}

// hostPlan is what Plan hands to Apply.
type hostPlan struct {
	Resolver     resolverState
	Sources      []step2Write // apt sources switched from http:// to https://
	InstallCA    bool         // ca-certificates first: https sources need it
	Upgrades     []aptUpgrade // what a full-upgrade would do, per the current package lists
	Install      []string     // packages to install after the upgrade
	AptWork      bool         // apt-get update and full-upgrade run
	AutoUpgrades *step2Write
	EnableUU     bool // systemctl enable --now unattended-upgrades
	Sysctl       *step2Write
	ApplySysctl  bool
	Dir          *step2Dir
	UFW          ufwPlan
	CheckHost    string // a host apt fetches from, resolved after the step
}

// step2Dir is ~/.openclaw of the deploy user.
type step2Dir struct {
	Path     string
	User     string
	UID, GID int
}

// Plan is read-only: it reads files and runs only commands that look (apt-get -s, dpkg-query, ufw status).
func (HostStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 2, Title: HostStep{}.Title()}
	var hp hostPlan
	groups, err := desiredUFW(a)
	if err != nil {
		p.Blocked = step2Sentence("the UFW rules cannot be made: " + err.Error())
		return p, nil
	}
	desired := ufwFlatten(groups)
	step2Guard(h, a, &p)

	// The resolver first: once UFW denies DNS to anything but the chosen resolvers, a LAN resolver is dead.
	rs, err := planResolver(h, a.Resolvers)
	if err != nil {
		return p, err
	}
	hp.Resolver = rs
	for _, w := range rs.Writes {
		c := Change{Target: w.Path, Kind: "file", Before: w.Before, After: w.Data, Mode: w.Perm}
		var warn []string
		if w.Path == resolvConf && len(rs.Outside) > 0 {
			warn = append(warn, fmt.Sprintf("the system resolver %s is not among the chosen resolvers (%s), and UFW would block it",
				strings.Join(rs.Outside, ", "), strings.Join(a.Resolvers, ", ")))
		}
		if w.Path == resolvConf && rs.Warning != "" {
			warn = append(warn, rs.Warning)
		}
		c.Warning = strings.Join(warn, "; ")
		p.Changes = append(p.Changes, c)
		p.Commands = append(p.Commands, step2WriteCommand(w.Path, w.Data))
	}
	if len(rs.Restart) > 0 {
		p.Commands = append(p.Commands, system.ShellQuote(rs.Restart))
	}
	p.Notes = append(p.Notes, rs.Notes...)

	// apt sources on http:// stop working under default-deny outbound.
	files, err := aptSources(h)
	if err != nil {
		return p, err
	}
	var httpFiles []string
	for _, f := range files {
		if len(f.HTTP) == 0 {
			continue
		}
		httpFiles = append(httpFiles, f.Path)
		if a.AllowHTTP {
			continue
		}
		hp.Sources = append(hp.Sources, step2Write{Path: f.Path, Before: f.Content, Data: f.HTTPS, Perm: 0o644})
		p.Changes = append(p.Changes, Change{Target: f.Path, Kind: "file", Before: f.Content, After: f.HTTPS, Mode: 0o644})
		p.Commands = append(p.Commands, fmt.Sprintf("sed -i 's|http://|https://|g' %s", f.Path))
	}
	if hosts := sourceHosts(files); len(hosts) > 0 {
		hp.CheckHost = hosts[0]
	} else {
		hp.CheckHost = "deb.debian.org"
	}
	if a.AllowHTTP && len(httpFiles) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("allow_http is set: %s keep http://, so UFW keeps 80/tcp out allowed; "+
			"switch them to https:// and drop allow_http to close it.", strings.Join(httpFiles, ", ")))
	}
	if len(hp.Sources) > 0 {
		ok, err := pkgInstalled(ctx, h, "ca-certificates")
		if err != nil {
			return p, err
		}
		if !ok {
			hp.InstallCA = true
			p.Changes = append(p.Changes, Change{Target: "package ca-certificates", Kind: "packages",
				Before: "ca-certificates: not installed\n", After: "ca-certificates: installed (https:// sources need it)\n"})
			p.Commands = append(p.Commands, "apt-get update && apt-get install -y --no-install-recommends ca-certificates")
		}
	}

	// Updates: what a full-upgrade would do according to the package lists as they are now.
	sim, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"apt-get", "-s", "-o", "Debug::NoLocking=1", "full-upgrade"}, Timeout: 2 * time.Minute})
	if err != nil {
		if isNotFound(err) {
			return p, errors.New("apt-get is not installed: Step 2 is written for Debian")
		}
		return p, fmt.Errorf("apt-get -s full-upgrade: %s", cmdOutput(err))
	}
	hp.Upgrades = parseAptSimulation(string(sim))
	if len(hp.Upgrades) > 0 {
		p.Changes = append(p.Changes, Change{Target: fmt.Sprintf("packages (apt-get full-upgrade: %d)", len(hp.Upgrades)), Kind: "packages",
			Before: renderPackages(hp.Upgrades, false), After: renderPackages(hp.Upgrades, true)})
		p.Notes = append(p.Notes, fmt.Sprintf("The upgrade list comes from the package lists of %s; apt-get update during apply may find more.", listsAge(h)))
	}
	uu, err := pkgInstalled(ctx, h, "unattended-upgrades")
	if err != nil {
		return p, err
	}
	systemd := false
	if _, err := h.Stat("/run/systemd/system"); err == nil {
		systemd = true
	}
	if !uu {
		hp.Install = append(hp.Install, "unattended-upgrades")
		hp.EnableUU = systemd
		p.Changes = append(p.Changes, Change{Target: "package unattended-upgrades", Kind: "packages",
			Before: "unattended-upgrades: not installed\n", After: "unattended-upgrades: installed and enabled\n"})
	} else if systemd {
		out, _ := h.Read(ctx, "systemctl", "is-enabled", "unattended-upgrades.service")
		if st := strings.TrimSpace(string(out)); st != "enabled" {
			hp.EnableUU = true
			p.Changes = append(p.Changes, Change{Target: "service unattended-upgrades", Kind: "setting",
				Before: "unattended-upgrades.service: " + step2Or(st, "unknown") + "\n", After: "unattended-upgrades.service: enabled\n"})
			p.Commands = append(p.Commands, "systemctl enable --now unattended-upgrades")
		}
	}
	live, err := readUFW(ctx, h)
	if err != nil {
		return p, err
	}
	if !live.Installed {
		hp.Install = append(hp.Install, "ufw")
	}
	hp.AptWork = len(hp.Upgrades) > 0 || len(hp.Install) > 0 || hp.InstallCA || len(hp.Sources) > 0
	if hp.AptWork {
		p.Commands = append(p.Commands, "apt-get update && apt-get -y -o Dpkg::Options::=--force-confold full-upgrade")
		if len(hp.Install) > 0 {
			p.Commands = append(p.Commands, "apt-get install -y --no-install-recommends "+strings.Join(hp.Install, " "))
		}
	}
	want := string(assets.AutoUpgrades())
	cur, err := step2ReadOptional(h, autoUpgrades)
	if err != nil {
		return p, err
	}
	if cur != want {
		hp.AutoUpgrades = &step2Write{Path: autoUpgrades, Before: cur, Data: want, Perm: 0o644}
		p.Changes = append(p.Changes, Change{Target: autoUpgrades, Kind: "file", Before: cur, After: want, Mode: 0o644})
		p.Commands = append(p.Commands, step2WriteCommand(autoUpgrades, want))
	} else if uu {
		if cfg, err := aptConfig(ctx, h); err == nil {
			for _, k := range periodicKeys {
				if cfg[k] != "1" {
					p.Notes = append(p.Notes, fmt.Sprintf("%s says %s \"1\", but apt's effective value is %q (%s): verification will fail until that is fixed.",
						autoUpgrades, k, cfg[k], strings.Join(periodicOverrides(h), "; ")))
				}
			}
		}
	}

	// IPv6 off: a sysctl drop-in and the kernel's values now.
	wantSysctl := string(assets.IPv6SysctlDropIn())
	cur, err = step2ReadOptional(h, ipv6DropIn)
	if err != nil {
		return p, err
	}
	if cur != wantSysctl {
		hp.Sysctl = &step2Write{Path: ipv6DropIn, Before: cur, Data: wantSysctl, Perm: 0o644}
		hp.ApplySysctl = true
		p.Changes = append(p.Changes, Change{Target: ipv6DropIn, Kind: "file", Before: cur, After: wantSysctl, Mode: 0o644})
	}
	var before, after strings.Builder
	for _, f := range ipv6Sysctls {
		v, err := step2ReadOptional(h, f)
		if err != nil || v == "" {
			continue // no IPv6 in this kernel: nothing to turn off
		}
		key := strings.ReplaceAll(strings.TrimPrefix(f, "/proc/sys/"), "/", ".")
		fmt.Fprintf(&before, "%s = %s\n", key, strings.TrimSpace(v))
		fmt.Fprintf(&after, "%s = 1\n", key)
	}
	if before.String() != after.String() {
		hp.ApplySysctl = true
		p.Changes = append(p.Changes, Change{Target: "kernel IPv6 settings", Kind: "setting", Before: before.String(), After: after.String()})
	}
	if hp.ApplySysctl {
		p.Commands = append(p.Commands, step2WriteCommand(ipv6DropIn, wantSysctl), "sysctl --system")
	}

	// ~/.openclaw for the deploy user, 0700.
	if d, err := deployDir(ctx, h, a); err != nil {
		if p.Blocked == "" {
			p.Blocked = step2Sentence(err.Error())
		}
	} else {
		hp.Dir = &d
		cur, want := dirState(h, d), fmt.Sprintf("directory, mode 0700, owner %s\n", d.User)
		if cur != want {
			p.Changes = append(p.Changes, Change{Target: d.Path, Kind: "file", Before: cur, After: want, Mode: 0o700})
			p.Commands = append(p.Commands, fmt.Sprintf("install -d -m 0700 -o %s -g %d %s", d.User, d.GID, d.Path))
		}
	}

	// UFW.
	up, changes := planUFW(live, desired)
	hp.UFW = up
	if a.AllowHTTP {
		for i := range changes {
			if changes[i].Kind == "rules" && changes[i].Warning == "" {
				changes[i].Warning = "80/tcp out stays allowed for apt's http:// sources (allow_http); every other port to the internet is denied"
			}
		}
	}
	p.Changes = append(p.Changes, changes...)
	if up.Reset && up.Block != "" {
		p.Changes = append(p.Changes, Change{Target: ufwAfterRules, Kind: "file", Before: live.After,
			After: afterRulesWithBlock(stockAfterRules(h), up.Block), Mode: 0o640})
		p.Notes = append(p.Notes, "ufw --force reset keeps its own copies of the old files as /etc/ufw/*.rules.<time>.")
	}
	p.Commands = append(p.Commands, up.commands()...)
	if listeners := unexpectedListeners(ctx, h); len(listeners) > 0 {
		p.Notes = append(p.Notes, "Listening on a non-loopback address besides sshd (verification reports each; stop what is not needed): "+strings.Join(listeners, "; ")+".")
	}
	if len(p.Pending()) == 0 {
		p.Commands = []string{"ufw status verbose", "sysctl net.ipv6.conf.all.disable_ipv6 net.ipv6.conf.default.disable_ipv6",
			"apt-config dump | grep Periodic", "ss -tulpn"}
	}
	p.Data = hp
	return p, nil
}

// step2WriteCommand is how an admin would write the file by hand: one printf argument per line.
func step2WriteCommand(path, content string) string {
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	return "printf '%s\\n' " + system.ShellQuote(lines) + " > " + path
}

// step2Sentence turns an error message into the one sentence Plan.Blocked holds.
func step2Sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.TrimSuffix(s[1:], ".") + "."
}

func step2Or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func stockAfterRules(h *system.Host) string {
	s, _ := step2ReadOptional(h, ufwStockAfter)
	return s
}

// step2Guard refuses the step when enabling UFW would cut the operator's own SSH session: the session's
// client is outside admin_source, or it reaches sshd on a port other than 22 (the only one allowed in).
func step2Guard(h *system.Host, a Answers, p *Plan) {
	src, _ := parseSource(a.AdminSource)
	conn, where := step2SSHConnection(h)
	if conn == "" {
		p.Notes = append(p.Notes, fmt.Sprintf("This run is not over SSH (no SSH_CONNECTION), so no session of yours can be cut; "+
			"after this step SSH is allowed in only from admin_source %s.", a.AdminSource))
		return
	}
	f := strings.Fields(conn)
	client, err := netip.ParseAddr(f[0])
	if err != nil {
		p.Blocked = fmt.Sprintf("The SSH session's client address %q (SSH_CONNECTION) cannot be read, so enabling UFW could cut it: run Step 2 from the console or fix the environment.", f[0])
		return
	}
	client = client.Unmap()
	if !client.Is4() || !src.Contains(client) {
		p.Blocked = fmt.Sprintf("This SSH session comes from %s, which is outside admin_source %s, so enabling UFW would cut it off: "+
			"set admin_source to include %s or run Step 2 from the admin machine.", client, a.AdminSource, client)
		return
	}
	if len(f) >= 4 && f[3] != "22" {
		p.Blocked = fmt.Sprintf("This SSH session reaches sshd on port %s, but UFW will allow SSH in only on port 22, so enabling it would cut the session off: move sshd to port 22 first.", f[3])
		return
	}
	p.Notes = append(p.Notes, fmt.Sprintf("Your SSH session comes from %s (%s), inside admin_source %s: enabling UFW keeps it.", client, where, a.AdminSource))
}

// step2SSHConnection finds the operator's SSH_CONNECTION ("client cport server sport"): in the environment,
// or, when sudo dropped it, in the environment of the closest ancestor process that has it (sudo itself,
// the login shell). It says where it was found.
func step2SSHConnection(h *system.Host) (conn, where string) {
	if v := strings.TrimSpace(h.Getenv("SSH_CONNECTION")); v != "" {
		return v, "SSH_CONNECTION"
	}
	pid := "self"
	for i := 0; i < 64; i++ {
		stat, err := h.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return "", ""
		}
		rest := string(stat)
		if j := strings.LastIndexByte(rest, ')'); j >= 0 { // "PID (comm) STATE PPID …"; comm may hold ")"
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return "", ""
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil || ppid <= 1 {
			return "", ""
		}
		pid = strconv.Itoa(ppid)
		env, err := h.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "SSH_CONNECTION="); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v), "SSH_CONNECTION of process " + pid
			}
		}
	}
	return "", ""
}

// deployDir is ~/.openclaw of the deploy user: answers admin_user, else SUDO_USER, else the only non-root
// member of group sudo.
func deployDir(ctx context.Context, h *system.Host, a Answers) (step2Dir, error) {
	name, how := a.AdminUser, "admin_user"
	if name == "" {
		if u := h.Getenv("SUDO_USER"); u != "" && u != "root" {
			name, how = u, "SUDO_USER"
		}
	}
	if name == "" {
		out, err := h.Read(ctx, "getent", "group", "sudo")
		if err == nil {
			f := strings.Split(strings.TrimSpace(string(out)), ":")
			var members []string
			if len(f) == 4 {
				for _, m := range strings.Split(f[3], ",") {
					if m = strings.TrimSpace(m); m != "" && m != "root" {
						members = append(members, m)
					}
				}
			}
			if len(members) == 1 {
				name, how = members[0], "the only member of group sudo"
			}
		}
	}
	if name == "" {
		return step2Dir{}, errors.New("it is not clear which user deploys OpenClaw (no admin_user, no SUDO_USER, and group sudo does not have exactly one member), so ~/.openclaw cannot be made: set admin_user in the answers")
	}
	out, err := h.Read(ctx, "getent", "passwd", name)
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if err != nil || len(f) < 7 {
		return step2Dir{}, fmt.Errorf("the deploy user %q (%s) does not exist on this machine, so ~/.openclaw cannot be made: create the user or set admin_user", name, how)
	}
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || f[5] == "" {
		return step2Dir{}, fmt.Errorf("the passwd entry of %q is unusable (%q): fix it or set admin_user", name, strings.TrimSpace(string(out)))
	}
	return step2Dir{Path: path.Join(f[5], openclawDir), User: name, UID: uid, GID: gid}, nil
}

// dirState describes the directory as it is: "" when absent.
func dirState(h *system.Host, d step2Dir) string {
	st, err := h.Stat(d.Path)
	if err != nil {
		return ""
	}
	if !st.IsDir() {
		return "not a directory\n"
	}
	owner := "uid ?"
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = "uid " + strconv.Itoa(int(sys.Uid))
		if int(sys.Uid) == d.UID {
			owner = d.User
		}
	}
	return fmt.Sprintf("directory, mode %04o, owner %s\n", st.Mode().Perm(), owner)
}

// Apply carries out the plan, in the order that keeps the machine reachable: the resolver, apt sources and
// packages first (while outbound traffic is still open), then IPv6, ~/.openclaw and UFW last; then it proves
// name resolution and an apt update over the new sources still work, and fails clearly if not.
func (HostStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	hp, ok := p.Data.(hostPlan)
	if !ok {
		if p.Empty() {
			return nil
		}
		return errors.New("the Step 2 plan carries no data; plan the step again")
	}
	if !hp.UFW.empty() && !hp.UFW.Install {
		live, err := readUFW(ctx, h)
		if err != nil {
			return err
		}
		if live.Fingerprint != hp.UFW.Fingerprint {
			return errors.New("UFW's rules or settings changed since this plan was made; plan Step 2 again")
		}
	}
	for _, w := range hp.Resolver.Writes {
		if err := h.WriteFile(ctx, w.Path, []byte(w.Data), system.WriteOpts{Perm: w.Perm}); err != nil {
			return fmt.Errorf("writing %s: %w", w.Path, err)
		}
	}
	if len(hp.Resolver.Restart) > 0 {
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: hp.Resolver.Restart}); err != nil {
			return err
		}
	}
	if hp.InstallCA { // over the sources as they are, before they switch to https://
		if err := aptRun(ctx, h, aptUpdateTimeout, "update"); err != nil {
			return err
		}
		if err := aptRun(ctx, h, aptInstallTimeout, "install", "-y", "--no-install-recommends", "ca-certificates"); err != nil {
			return err
		}
	}
	for _, w := range hp.Sources {
		if err := h.WriteFile(ctx, w.Path, []byte(w.Data), system.WriteOpts{Perm: w.Perm}); err != nil {
			return fmt.Errorf("switching %s to https://: %w", w.Path, err)
		}
	}
	if hp.AptWork {
		if err := aptRun(ctx, h, aptUpdateTimeout, "update"); err != nil {
			return err
		}
		if err := aptRun(ctx, h, aptUpgradeTimeout, "-y", "full-upgrade"); err != nil {
			return err
		}
		if len(hp.Install) > 0 {
			if err := aptRun(ctx, h, aptInstallTimeout, append([]string{"install", "-y", "--no-install-recommends"}, hp.Install...)...); err != nil {
				return err
			}
		}
	}
	if w := hp.AutoUpgrades; w != nil {
		if err := h.WriteFile(ctx, w.Path, []byte(w.Data), system.WriteOpts{Perm: w.Perm}); err != nil {
			return fmt.Errorf("writing %s: %w", w.Path, err)
		}
	}
	if hp.EnableUU {
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"systemctl", "enable", "--now", "unattended-upgrades.service"}}); err != nil {
			return err
		}
	}
	if w := hp.Sysctl; w != nil {
		if err := h.WriteFile(ctx, w.Path, []byte(w.Data), system.WriteOpts{Perm: w.Perm}); err != nil {
			return fmt.Errorf("writing %s: %w", w.Path, err)
		}
	}
	if hp.ApplySysctl {
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"sysctl", "--system"}}); err != nil {
			return err
		}
	}
	if d := hp.Dir; d != nil {
		if err := h.MkdirAll(d.Path, 0o700, d.UID, d.GID); err != nil {
			return fmt.Errorf("making %s: %w", d.Path, err)
		}
	}
	if err := applyUFW(ctx, h, hp.UFW); err != nil {
		return err
	}
	if h.DryRun {
		return nil
	}
	// Prove that what the machine needs still works through the new firewall.
	if _, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"getent", "ahostsv4", hp.CheckHost}, Timeout: 30 * time.Second}); err != nil {
		return fmt.Errorf("after Step 2, name resolution fails (getent ahostsv4 %s: %s): check that the resolvers %s answer and that %s lists them",
			hp.CheckHost, cmdOutput(err), strings.Join(resolverList(hp), ", "), resolvConf)
	}
	if err := aptRun(ctx, h, aptUpdateTimeout, "update"); err != nil {
		return fmt.Errorf("after Step 2, apt can no longer update its package lists through UFW: %w", err)
	}
	return nil
}

func resolverList(hp hostPlan) []string {
	var rs []string
	for _, w := range hp.Resolver.Writes {
		if w.Path == resolvConf {
			rs = resolvNameservers(w.Data)
		}
	}
	if len(rs) == 0 {
		return hp.Resolver.Servers
	}
	return rs
}

// aptRun runs apt-get with the step's options, streaming its output as progress. apt-get update is made to
// fail on any source it could not fetch (it only warns by default). The error ends with apt's last lines.
func aptRun(ctx context.Context, h *system.Host, timeout time.Duration, args ...string) error {
	argv := append([]string{"apt-get"}, aptOpts...)
	update := len(args) == 1 && args[0] == "update"
	if update {
		argv = append(argv, "-o", "APT::Update::Error-Mode=any")
	}
	argv = append(argv, args...)
	var tail []string
	var warned []string
	fwd := step2Progress(h)
	out := func(line string) {
		tail = append(tail, line)
		if len(tail) > 15 {
			tail = tail[1:]
		}
		if strings.HasPrefix(line, "W: ") || strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "Err:") {
			warned = append(warned, line)
		}
		if fwd != nil {
			fwd(line)
		}
	}
	_, err := h.ExecCmd(ctx, system.Cmd{Argv: argv, Timeout: timeout, Output: out})
	if err == nil && update && len(warned) > 0 {
		err = errors.New("apt-get update reported: " + strings.Join(warned, " | "))
	}
	if err != nil {
		return fmt.Errorf("%s: %v\nlast lines:\n%s", system.ShellQuote(argv), step2FirstLine(err.Error()), strings.Join(tail, "\n"))
	}
	return nil
}

func step2FirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// step2Progress is where long commands' output lines go while they run (the wizard's apply log). The Host
// offers it once it has a Progress method; until then the lines are kept only for error messages.
func step2Progress(h *system.Host) func(string) {
	if p, ok := any(h).(interface{ Progress(string) }); ok {
		return p.Progress
	}
	return nil
}

// listener is one listening socket from `ss -H -tulpn`.
type listener struct {
	Proto, Addr, Port, Procs string
}

func parseListeners(out string) []listener {
	var ls []listener
	for _, it := range parseSS(out) {
		proto, local, _ := strings.Cut(it.Key, " ")
		i := strings.LastIndexByte(local, ':')
		if i < 0 {
			continue
		}
		addr := local[:i]
		if j := strings.IndexByte(addr, '%'); j >= 0 { // "127.0.0.53%lo", "[fe80::1]%eth0"
			addr = addr[:j]
		}
		addr = strings.Trim(addr, "[]")
		ls = append(ls, listener{Proto: proto, Addr: addr, Port: local[i+1:], Procs: it.Value})
	}
	return ls
}

// expectedListener: loopback-only sockets, sshd on 22, and a DHCP client on 68/udp.
func expectedListener(l listener) bool {
	if a, err := netip.ParseAddr(l.Addr); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	if l.Addr == "localhost" {
		return true
	}
	if l.Port == "22" && strings.HasPrefix(l.Proto, "tcp") && strings.Contains(l.Procs, "sshd") {
		return true
	}
	if l.Port == "68" && strings.HasPrefix(l.Proto, "udp") {
		for _, c := range []string{"dhclient", "systemd-network", "NetworkManager", "dhcpcd"} {
			if strings.Contains(l.Procs, c) {
				return true
			}
		}
	}
	return false
}

func (l listener) String() string {
	host := l.Addr
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s %s:%s (%s)", l.Proto, host, l.Port, l.Procs)
}

func unexpectedListeners(ctx context.Context, h *system.Host) []string {
	out, err := h.Read(ctx, "ss", "-H", "-tulpn")
	if err != nil {
		return nil
	}
	var bad []string
	for _, l := range parseListeners(string(out)) {
		if !expectedListener(l) {
			bad = append(bad, l.String())
		}
	}
	return bad
}

// Verify probes the live system: UFW (active, both defaults deny, exactly the planned rules in order, in the
// kernel too), IPv6 off, unattended-upgrades effective, apt sources and resolvers as planned, name resolution,
// ~/.openclaw, and listening services (each unexpected one is a failed check naming its process).
func (HostStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	var cs []Check
	groups, err := desiredUFW(a)
	if err != nil {
		return []Check{{ID: "step2.answers", Name: "answers usable for UFW", Expect: "admin_source and resolvers set", Got: "no", Reason: err.Error()}}
	}
	cs = append(cs, verifyUFW(ctx, h, ufwFlatten(groups))...)

	for _, f := range ipv6Sysctls {
		key := strings.ReplaceAll(strings.TrimPrefix(f, "/proc/sys/"), "/", ".")
		c := Check{ID: "step2.ipv6." + strings.Split(key, ".")[3], Name: key, Expect: "1"}
		v, err := step2ReadOptional(h, f)
		switch {
		case err != nil:
			c.Got, c.Reason = "unreadable", err.Error()
		case v == "":
			c.Got, c.OK = "no IPv6 in this kernel", true
		default:
			c.Got = strings.TrimSpace(v)
			c.OK = c.Got == "1"
			if !c.OK {
				c.Reason = "sysctl --system did not apply " + ipv6DropIn + ", or something set it back"
			}
		}
		cs = append(cs, c)
	}
	g := Check{ID: "step2.ipv6.global", Name: "no global IPv6 address", Expect: "none"}
	if out, err := h.Read(ctx, "ip", "-j", "-6", "addr"); err != nil {
		g.Got, g.Reason = "unknown", "ip -j -6 addr: "+cmdOutput(err)
	} else if _, global, err := parseIPAddr(out); err != nil {
		g.Got, g.Reason = "unreadable", err.Error()
	} else {
		g.Got = joinOr(global, ", ", "none")
		g.OK = len(global) == 0
	}
	cs = append(cs, g)

	uu := Check{ID: "step2.uu.installed", Name: "unattended-upgrades installed", Expect: "installed"}
	if ok, err := pkgInstalled(ctx, h, "unattended-upgrades"); err != nil {
		uu.Got, uu.Reason = "unknown", err.Error()
	} else if ok {
		uu.Got, uu.OK = "installed", true
	} else {
		uu.Got = "not installed"
	}
	cs = append(cs, uu)
	cfg, cfgErr := aptConfig(ctx, h)
	for _, k := range periodicKeys {
		c := Check{ID: "step2.uu." + strings.ToLower(strings.TrimPrefix(k, "APT::Periodic::")), Name: k + " (apt-config dump)", Expect: `"1"`}
		if cfgErr != nil {
			c.Got, c.Reason = "unknown", cfgErr.Error()
		} else {
			c.Got = strconv.Quote(cfg[k])
			c.OK = cfg[k] == "1"
			if !c.OK {
				c.Reason = strings.Join(append([]string{"apply Step 2"}, periodicOverrides(h)...), "; ")
			}
		}
		cs = append(cs, c)
	}

	src := Check{ID: "step2.apt.https", Name: "apt sources reachable through UFW", Expect: "no http:// sources"}
	if files, err := aptSources(h); err != nil {
		src.Got, src.Reason = "unreadable", err.Error()
	} else {
		var http []string
		for _, f := range files {
			if len(f.HTTP) > 0 {
				http = append(http, f.Path)
			}
		}
		switch {
		case len(http) == 0:
			src.Got, src.OK = "all https:// (or other)", true
		case a.AllowHTTP:
			src.Expect = "http:// sources allowed (allow_http)"
			src.Got, src.OK = "http:// in "+strings.Join(http, ", ")+" with 80/tcp out allowed", true
		default:
			src.Got, src.Reason = "http:// in "+strings.Join(http, ", "), "UFW blocks 80/tcp out: apply Step 2 to switch them to https://"
		}
	}
	cs = append(cs, src)

	res := Check{ID: "step2.dns.resolvers", Name: "system resolver uses only the chosen resolvers", Expect: strings.Join(a.Resolvers, ", ")}
	if rs, err := planResolver(h, a.Resolvers); err != nil {
		res.Got, res.Reason = "unreadable", err.Error()
	} else {
		res.Got = rs.Manager + ": " + joinOr(rs.Servers, ", ", "no name servers")
		res.OK = len(rs.Writes) == 0 && (len(rs.Outside) == 0 || rs.Manager == resolverResolved)
		if !res.OK {
			res.Reason = "apply Step 2 to point the system resolver at the chosen resolvers"
		}
	}
	cs = append(cs, res)

	host := "deb.debian.org"
	if files, err := aptSources(h); err == nil {
		if hs := sourceHosts(files); len(hs) > 0 {
			host = hs[0]
		}
	}
	dns := Check{ID: "step2.dns.works", Name: "name resolution", Expect: host + " resolves"}
	if out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"getent", "ahostsv4", host}, Timeout: 30 * time.Second}); err != nil {
		dns.Got, dns.Reason = "fails", "getent ahostsv4 "+host+": "+cmdOutput(err)
	} else {
		dns.Got, dns.OK = step2Or(strings.Join(strings.Fields(step2FirstLine(string(out))), " "), "resolves"), true
	}
	cs = append(cs, dns)

	dir := Check{ID: "step2.openclaw-dir", Name: "~/.openclaw of the deploy user", Expect: "directory, mode 0700"}
	if d, err := deployDir(ctx, h, a); err != nil {
		dir.Got, dir.Reason = "unknown user", err.Error()
	} else {
		dir.Name = d.Path
		dir.Expect = fmt.Sprintf("directory, mode 0700, owner %s", d.User)
		dir.Got = strings.TrimSpace(step2Or(dirState(h, d), "absent"))
		dir.OK = dir.Got == dir.Expect
	}
	cs = append(cs, dir)

	ls := Check{ID: "step2.listen", Name: "listening services", Expect: "only sshd (and loopback-only services)"}
	if out, err := h.Read(ctx, "ss", "-H", "-tulpn"); err != nil {
		ls.Got, ls.Reason = "unknown", "ss -H -tulpn: "+cmdOutput(err)
		cs = append(cs, ls)
	} else {
		var bad []Check
		var all []string
		for _, l := range parseListeners(string(out)) {
			all = append(all, l.String())
			if !expectedListener(l) {
				bad = append(bad, Check{ID: "step2.listen.unexpected", Name: "unexpected listener", Expect: "not listening beyond loopback",
					Got: l.String(), Reason: "stop or rebind it to 127.0.0.1 unless it is needed; UFW drops it from outside, but nothing should rely on that alone"})
			}
		}
		ls.Got = joinOr(all, "; ", "none")
		ls.OK = len(bad) == 0
		if !ls.OK {
			ls.Reason = fmt.Sprintf("%d unexpected", len(bad))
		}
		cs = append(append(cs, ls), bad...)
	}
	return cs
}
