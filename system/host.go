package system

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultStateDir is where state, audits, backups and the journal live unless --state-dir says otherwise.
const DefaultStateDir = "/var/lib/openclaw-harden"

// Host is the machine as the steps see it. Reads always happen; in dry-run mode every write and every
// state-changing command is refused here, recorded, and reported as "would write" / "would run", so a
// step cannot forget to honour --dry-run.
type Host struct {
	Runner   Runner
	Root     string // prefix for every path; "" on a real machine, a temp dir in tests
	StateDir string // already includes Root when set by NewHost
	DryRun   bool
	Clock    func() time.Time // nil means time.Now
	// IPTablesFactory opens the iptables handle; nil means the real go-iptables one.
	IPTablesFactory func() (IPTables, error)
	// Env looks up the process environment (SSH_CONNECTION); tests replace it.
	Env func(string) string
	// KeepState leaves state.json as it is (SaveState of it does nothing): a verify run while another run
	// holds the lock must not overwrite that run's statuses with its own view.
	KeepState bool

	mu      sync.Mutex
	would   []string
	step    int
	runID   string
	secrets []string
	journal func(string)
	crash   *crashPoint
	changes int // state-changing operations journaled for the current step (see crashPoint)
}

// NewHost builds the Host a real run uses.
func NewHost(stateDir string, dryRun bool) *Host {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	return &Host{Runner: ExecRunner{}, StateDir: stateDir, DryRun: dryRun, Env: os.Getenv}
}

// ErrDryRun is never returned to steps (they get nil and a "would" record); it marks refused work in the journal.
var ErrDryRun = errors.New("refused: dry run")

// Path maps an absolute system path into the Host's root.
func (h *Host) Path(p string) string {
	if h.Root == "" {
		return p
	}
	return filepath.Join(h.Root, p)
}

// Now is the clock the Host uses (tests fix it).
func (h *Host) Now() time.Time { return h.now() }

func (h *Host) now() time.Time {
	if h.Clock != nil {
		return h.Clock()
	}
	return time.Now()
}

func (h *Host) getenv(k string) string {
	if h.Env != nil {
		return h.Env(k)
	}
	return os.Getenv(k)
}

// Getenv reads the environment the tool was started with.
func (h *Host) Getenv(k string) string { return h.getenv(k) }

// SetStep tags the backups and journal lines that follow with the step that caused them.
func (h *Host) SetStep(n int) {
	h.mu.Lock()
	h.step = n
	h.changes = 0
	h.mu.Unlock()
}

// AddSecret registers a value that must never appear in the journal, the UI, diffs or JSON output.
func (h *Host) AddSecret(s string) {
	if len(s) < 4 {
		return
	}
	h.mu.Lock()
	h.secrets = append(h.secrets, s)
	h.mu.Unlock()
}

// Redact replaces every registered secret in s with <redacted>.
func (h *Host) Redact(s string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sec := range h.secrets {
		s = strings.ReplaceAll(s, sec, "<redacted>")
	}
	return s
}

// Would lists what dry-run refused, in order.
func (h *Host) Would() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.would...)
}

// OnJournal lets a caller (the UI's apply log) see each journal line as it is written.
func (h *Host) OnJournal(fn func(string)) {
	h.mu.Lock()
	h.journal = fn
	h.mu.Unlock()
}

func (h *Host) record(format string, args ...any) {
	line := h.Redact(fmt.Sprintf(format, args...))
	h.mu.Lock()
	if h.DryRun {
		h.would = append(h.would, line)
	}
	step, fn := h.step, h.journal
	h.mu.Unlock()
	if fn != nil {
		fn(line)
	}
	if h.DryRun {
		return
	}
	entry := fmt.Sprintf("%s step=%d %s\n", h.now().UTC().Format(time.RFC3339), step, line)
	if err := os.MkdirAll(h.StateDir, 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(h.StateDir, "journal.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	f.WriteString(entry)
	f.Close()
	h.maybeCrash(step, line)
}

// Read runs a command that only looks at the system. It runs in dry-run mode too.
func (h *Host) Read(ctx context.Context, argv ...string) ([]byte, error) {
	return h.Runner.Run(ctx, Cmd{Argv: argv})
}

// ReadCmd is Read with the full Cmd (stdin, timeout).
func (h *Host) ReadCmd(ctx context.Context, c Cmd) ([]byte, error) {
	return h.Runner.Run(ctx, c)
}

// Exec runs a command that changes the system; in dry-run mode it is not run and is reported instead.
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	return h.ExecCmd(ctx, Cmd{Argv: argv})
}

// ExecCmd is Exec with the full Cmd (stdin, timeout, live output).
func (h *Host) ExecCmd(ctx context.Context, c Cmd) ([]byte, error) {
	if h.DryRun {
		h.record("would run: %s", shellQuote(c.Argv))
		return nil, nil
	}
	start := h.now()
	out, err := h.Runner.Run(ctx, c)
	took := h.now().Sub(start).Round(time.Millisecond)
	if err != nil {
		h.record("run: %s -> exit %d (%s): %s", shellQuote(c.Argv), ExitCode(err), took, firstLine(err.Error()))
		return out, err
	}
	h.record("run: %s -> exit 0 (%s)", shellQuote(c.Argv), took)
	return out, nil
}

// ReadFile reads a file; a missing file is (nil, fs.ErrNotExist) so steps can tell "absent" from "broken".
func (h *Host) ReadFile(path string) ([]byte, error) { return os.ReadFile(h.Path(path)) }

// Stat reports on a file inside the Host's root.
func (h *Host) Stat(path string) (fs.FileInfo, error) { return os.Stat(h.Path(path)) }

// ReadDir lists a directory inside the Host's root.
func (h *Host) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(h.Path(path)) }

// Glob matches a pattern inside the Host's root and returns system paths.
func (h *Host) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(h.Path(pattern))
	if err != nil || h.Root == "" {
		return m, err
	}
	for i := range m {
		m[i] = strings.TrimPrefix(m[i], h.Root)
	}
	return m, nil
}

// WriteOpts controls WriteFile.
type WriteOpts struct {
	Perm      fs.FileMode // for new files, and for existing ones when ForcePerm
	ForcePerm bool        // the mode is part of the hardening (0600 secrets), not just a default
	Validate  []string    // argv run on the temp file before it is moved in; "%s" is replaced by its path
}

// WriteFile backs the old file up under the state dir, writes the new one atomically after the validator
// accepted it, and journals both. Unchanged content (and mode) is not rewritten.
func (h *Host) WriteFile(ctx context.Context, path string, data []byte, o WriteOpts) error {
	if o.Perm == 0 {
		o.Perm = 0o644
	}
	real := h.Path(path)
	old, err := os.ReadFile(real)
	if err == nil && string(old) == string(data) {
		if st, err := os.Stat(real); err == nil && (!o.ForcePerm || st.Mode().Perm() == o.Perm) {
			return nil
		}
	}
	if h.DryRun {
		h.record("would write: %s (%d bytes, mode %04o)", path, len(data), o.Perm)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return err
	}
	backup, err := h.backup(path)
	if err != nil {
		return fmt.Errorf("backing up %s before changing it: %w", path, err)
	}
	var validate func(string) error
	if len(o.Validate) > 0 {
		validate = func(tmp string) error {
			argv := make([]string, len(o.Validate))
			for i, a := range o.Validate {
				argv[i] = strings.ReplaceAll(a, "%s", tmp)
			}
			_, err := h.Runner.Run(ctx, Cmd{Argv: argv})
			h.record("validate: %s -> %v", shellQuote(argv), errString(err))
			return err
		}
	}
	if err := writeAtomic(real, data, o.Perm, o.ForcePerm, validate); err != nil {
		h.record("write: %s failed: %s", path, firstLine(err.Error()))
		return err
	}
	h.record("write: %s (%d bytes, sha256 %s, backup %s)", path, len(data), short(data), backup)
	return nil
}

// RemoveFile deletes a file the tool owns, after backing it up.
func (h *Host) RemoveFile(path string) error {
	if _, err := os.Lstat(h.Path(path)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if h.DryRun {
		h.record("would remove: %s", path)
		return nil
	}
	backup, err := h.backup(path)
	if err != nil {
		return err
	}
	if err := os.Remove(h.Path(path)); err != nil {
		return err
	}
	h.record("remove: %s (backup %s)", path, backup)
	return nil
}

// MkdirAll creates a directory with an exact mode (and owner when uid >= 0); dry-run reports it.
func (h *Host) MkdirAll(path string, perm fs.FileMode, uid, gid int) error {
	real := h.Path(path)
	st, err := os.Stat(real)
	if err == nil && st.IsDir() && st.Mode().Perm() == perm && ownedBy(st, uid, gid) {
		return nil
	}
	if h.DryRun {
		h.record("would create directory: %s (mode %04o)", path, perm)
		return nil
	}
	if err := os.MkdirAll(real, perm); err != nil {
		return err
	}
	if err := os.Chmod(real, perm); err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Chown(real, uid, gid); err != nil {
			return err
		}
	}
	h.record("mkdir: %s (mode %04o)", path, perm)
	return nil
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return firstLine(err.Error())
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func short(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}

func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\|&;<>()*?[]{}!#~") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// ShellQuote renders argv as a command an operator can paste into a shell.
func ShellQuote(argv []string) string { return shellQuote(argv) }

// BackupEntry is one file saved before the tool changed it.
type BackupEntry struct {
	Path   string    `json:"path"`
	Step   int       `json:"step"`
	Time   time.Time `json:"time"`
	Run    string    `json:"run"`
	SHA256 string    `json:"sha256,omitempty"` // of the saved content; empty when the file did not exist
	FileMeta
}

const manifestName = "manifest.json"

func (h *Host) runDir() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runID == "" {
		h.runID = h.now().UTC().Format("20060102T150405.000000000Z")
	}
	return filepath.Join(h.StateDir, "backups", h.runID)
}

// backup copies path (or notes that it did not exist) into this run's backup dir, once per path per run,
// so the backup always holds the content from before this run touched it.
func (h *Host) backup(path string) (string, error) {
	dir := h.runDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	entries, err := readManifest(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Path == path {
			return dir, nil
		}
	}
	meta, err := statMeta(h.Path(path))
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	e := BackupEntry{Path: path, Step: h.step, Time: h.now().UTC(), Run: filepath.Base(dir), FileMeta: meta}
	h.mu.Unlock()
	if meta.Existed {
		data, err := os.ReadFile(h.Path(path))
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		e.SHA256 = hex.EncodeToString(sum[:])
		dst := filepath.Join(dir, "files", path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return "", err
		}
		if err := WriteAtomic(dst, data, 0o600); err != nil {
			return "", err
		}
	}
	entries = append(entries, e)
	js, _ := json.MarshalIndent(entries, "", "  ")
	return dir, WriteAtomic(filepath.Join(dir, manifestName), js, 0o600)
}

func readManifest(dir string) ([]BackupEntry, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []BackupEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: not a backup manifest: %w", filepath.Join(dir, manifestName), err)
	}
	return entries, nil
}

// Backups lists every saved file, oldest first.
func (h *Host) Backups() ([]BackupEntry, error) {
	runs, err := os.ReadDir(filepath.Join(h.StateDir, "backups"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var all []BackupEntry
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		es, err := readManifest(filepath.Join(h.StateDir, "backups", r.Name()))
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all, nil
}

// Rollback puts back, for every file the tool changed (in step, or in every step when step < 0), the content
// it had before the tool first touched it: byte for byte, with its mode and owner, or removes it when it did
// not exist. It returns the paths it restored.
func (h *Host) Rollback(step int) ([]string, error) {
	all, err := h.Backups()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var done []string
	for _, e := range all {
		if (step >= 0 && e.Step != step) || seen[e.Path] {
			continue
		}
		seen[e.Path] = true
		if h.alreadyRestored(e) {
			continue
		}
		if err := h.restore(e); err != nil {
			return done, fmt.Errorf("restoring %s: %w", e.Path, err)
		}
		done = append(done, e.Path)
	}
	return done, nil
}

// alreadyRestored reports a file that is already as the backup has it, so a second rollback does nothing.
func (h *Host) alreadyRestored(e BackupEntry) bool {
	st, err := os.Lstat(h.Path(e.Path))
	if !e.Existed {
		return errors.Is(err, fs.ErrNotExist)
	}
	if err != nil || st.Mode().Perm() != e.Mode {
		return false
	}
	data, err := os.ReadFile(h.Path(e.Path))
	if err != nil {
		return false
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == e.SHA256
}

func (h *Host) restore(e BackupEntry) error {
	real := h.Path(e.Path)
	if !e.Existed {
		if h.DryRun {
			h.record("would remove: %s (it did not exist before)", e.Path)
			return nil
		}
		err := os.Remove(real)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		h.record("rollback: removed %s (it did not exist before)", e.Path)
		return err
	}
	data, err := os.ReadFile(filepath.Join(h.StateDir, "backups", e.Run, "files", e.Path))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != e.SHA256 {
		return fmt.Errorf("backup of %s in run %s is damaged (checksum mismatch); not restoring it", e.Path, e.Run)
	}
	if h.DryRun {
		h.record("would restore: %s from backup %s", e.Path, e.Run)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return err
	}
	if err := writeAtomic(real, data, e.Mode, true, nil); err != nil {
		return err
	}
	if e.UID >= 0 && os.Geteuid() == 0 {
		if err := os.Chown(real, e.UID, e.GID); err != nil {
			return err
		}
	}
	h.record("rollback: restored %s from backup %s", e.Path, e.Run)
	return nil
}

// SaveState writes a file in the state dir atomically (mode 0600, dir 0700). In dry-run mode nothing is written.
func (h *Host) SaveState(name string, data []byte) error {
	if h.KeepState && name == "state.json" {
		return nil
	}
	if h.DryRun {
		if name != "state.json" { // the wizard's own bookkeeping is not part of what a step would do
			h.record("would write: %s (%d bytes)", filepath.Join(h.StateDir, name), len(data))
		}
		return nil
	}
	p := filepath.Join(h.StateDir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(h.StateDir, 0o700); err != nil {
		return err
	}
	if err := writeAtomic(p, []byte(h.Redact(string(data))), 0o600, true, nil); err != nil {
		return err
	}
	if name != "state.json" { // state.json changes at every status; journaling each would drown the rest
		h.record("write: %s (%d bytes)", p, len(data))
	}
	return nil
}

// UpdateState rewrites a state-dir file from what is on disk now: merge gets the current bytes (nil when
// there is no file yet) and returns the new ones, all under an exclusive flock on the state directory, so two
// runs that save at once (concurrent verifies) each see the other's last write instead of overwriting it
// with what they read when they started. Written like SaveState; nothing in dry-run or KeepState mode.
func (h *Host) UpdateState(name string, merge func(cur []byte) ([]byte, error)) error {
	if h.DryRun || (h.KeepState && name == "state.json") {
		data, err := merge(nil)
		if err != nil {
			return err
		}
		return h.SaveState(name, data)
	}
	if err := os.MkdirAll(h.StateDir, 0o700); err != nil {
		return err
	}
	dir, err := os.Open(h.StateDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	// A directory lock, not the lock file: a run that changes the machine holds that one for its whole
	// length, while this one is held only for a read and a rename.
	if err := flockTimeout(int(dir.Fd()), 10*time.Second); err != nil {
		return fmt.Errorf("locking %s to save %s: %w", h.StateDir, name, err)
	}
	defer unlockFD(int(dir.Fd()))
	cur, err := os.ReadFile(filepath.Join(h.StateDir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := merge(cur)
	if err != nil {
		return err
	}
	return h.SaveState(name, data)
}

// LoadState reads a file from the state dir; fs.ErrNotExist when it is not there yet.
func (h *Host) LoadState(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(h.StateDir, name))
}

// StateFiles lists files in a state sub-directory (audits), sorted by name.
func (h *Host) StateFiles(sub string) ([]string, error) {
	es, err := os.ReadDir(filepath.Join(h.StateDir, sub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, filepath.Join(sub, e.Name()))
		}
	}
	sort.Strings(out)
	return out, err
}

// Progress shows one line of a long command's output (apt) to whoever watches the apply (the wizard's log,
// the headless output). It is not journaled: the journal keeps what ran and how it ended, not every line.
func (h *Host) Progress(line string) {
	h.mu.Lock()
	fn := h.journal
	h.mu.Unlock()
	if fn != nil {
		fn("  " + h.Redact(line))
	}
}
