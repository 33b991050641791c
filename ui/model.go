// Package ui is the Bubble Tea wizard that walks the operator through the hardening steps. It drives steps
// only through a *steps.Session, so state.json always says what really happened, and it does all work that
// can block (Plan, Apply, Verify, Rollback, the audit hooks) inside tea.Cmds that report back as messages.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"openclaw-harden/assets"
	"openclaw-harden/steps"
)

// Options are what the main package knows and the wizard needs.
type Options struct {
	// DryRun shows the DRY RUN banner and the "would run / would write" list after Apply. The host's own
	// DryRun is what actually refuses writes; the wizard refuses to apply when the two disagree.
	DryRun bool
	// NoColor renders without any escape sequence. Run also honours the NO_COLOR environment variable.
	NoColor bool
	// AnswersPath is where the answers came from, shown to the operator; "" when only defaults are used.
	AnswersPath string
	// AskAdminSource is the admin source to propose (the SSH client from SSH_CONNECTION); "" when unknown.
	AskAdminSource string
	// Input and Output replace the terminal (tests); nil means stdin/stdout.
	Input  io.Reader
	Output io.Writer
	// Audit reads the before/after audit for the final screen; the wizard never touches audit files itself.
	Audit AuditHooks
	// RestartDocker restarts the Docker daemon (systemctl restart docker), so Steps 4 and 5 can be verified
	// again after it: how the DOCKER-USER rules are proven to survive a restart. nil: the key is not offered.
	RestartDocker func(ctx context.Context) error
}

// AuditHooks are supplied by the main package, which owns the audit files.
type AuditHooks struct {
	// TakeAfter records the "after" snapshot when the last step is done. Optional.
	TakeAfter func(ctx context.Context) error
	// Latest returns the baseline and the newest snapshot, each already rendered as readable text with one
	// fact per line (e.g. "sshd  passwordauthentication = no"); the final screen shows their line diff.
	Latest func() (before, after string, err error)
}

type phase int

const (
	phaseAsk             phase = iota // admin source has no default: ask before anything runs
	phasePlanning                     // Plan is running (read-only)
	phasePlan                         // plan shown; enter goes on
	phaseRisk                         // the plan names a risk the operator must accept by typing
	phaseConfirm                      // "Apply 3 changes to 2 files?"
	phaseApplying                     // Apply is running; quitting is refused
	phaseWould                        // dry run: what Apply would have done
	phaseVerifying                    // Verify is running
	phaseVerified                     // results shown; failed ones cannot be passed
	phaseConfirmRollback              // "Roll back Step N?"
	phaseSwitches                     // the operator confirms by hand what the VM cannot see (Step 3's switches)
	phaseConfirming                   // the confirmation is being recorded
	phaseRollingBack                  // Rollback is running; quitting is refused
	phaseBlocked                      // a guard refused the plan
	phaseUnavailable                  // the step is not built yet
	phasePlanError                    // Plan itself failed
	phaseFinal                        // every step has been through; audit diff
)

// Model is the wizard. It is exported so tests can drive it message by message; its fields stay private so
// the only way to change it is Update. The maps are shared between copies, which is safe because Bubble
// Tea only ever keeps the newest copy.
type Model struct {
	s     *steps.Session
	opts  Options
	ctx   context.Context
	dry   bool
	st    styles
	keys  keyMap
	help  help.Model
	vp    viewport.Model
	vpKey string // which screen the viewport shows, so a new screen starts at its top
	// explain is assets.Explanation; tests pin it so golden screens do not change when the prose does.
	explain func(id int) string

	width, height int

	phase  phase
	cur    int // index in s.Steps of the step being worked on; len(s.Steps) on the final screen
	review int // index of a step being reviewed read-only; -1 when not reviewing
	gen    int // bumped per operation so a late message from an abandoned one is ignored

	plans       map[int]steps.Plan    // last plan per step index, for the review screens
	checks      map[int][]steps.Check // last verification per step index
	unavailable map[int]bool
	noChanges   bool // the current step's plan was empty and went straight to verification
	applyErr    error
	planErr     error
	riskOK      bool
	details     bool
	showCmds    bool
	recheck     bool // every step had passed before: this run re-verifies them all
	restarting  bool // the verification running follows a Docker restart the operator asked for

	log     []string
	dropped *atomic.Int64
	journal chan string
	would   []string

	adminInput field
	riskInput  field
	askErr     string
	riskErr    string
	saveFirst  bool // the admin source was just entered: persist it with the first plan

	notice   string // one line for the operator, cleared by the next key
	audit    *auditMsg
	auditErr error
	quitting bool
}

// New builds the wizard at the first step that has not passed (or at Step 0 for a re-verification run when
// every step had passed). It registers a journal listener on the session's host for the live apply log.
func New(s *steps.Session, opts Options) Model {
	st := newStyles(opts.NoColor)
	m := Model{
		s:           s,
		opts:        opts,
		ctx:         context.Background(),
		explain:     assets.Explanation,
		dry:         opts.DryRun || s.Host.DryRun,
		st:          st,
		keys:        newKeyMap(),
		help:        help.New(),
		vp:          viewport.New(viewport.WithWidth(80), viewport.WithHeight(10)),
		width:       80,
		height:      24,
		review:      -1,
		plans:       map[int]steps.Plan{},
		checks:      map[int][]steps.Check{},
		unavailable: map[int]bool{},
		dropped:     &atomic.Int64{},
		journal:     make(chan string, 4096),
		adminInput:  newField("admin source › ", 43, st.prompt),
		riskInput:   newField(`type "accept" › `, 10, st.prompt),
	}
	m.help.Styles = st.help
	m.cur = s.Resume()
	if m.cur >= len(s.Steps) && len(s.Steps) > 0 {
		m.cur, m.recheck = 0, true
	}
	// Never block a step on a slow screen: if the buffer is full, count the line and say so in the log.
	ch, dropped := m.journal, m.dropped
	s.Host.OnJournal(func(line string) {
		select {
		case ch <- line:
		default:
			dropped.Add(1)
		}
	})
	if s.Answers.AdminSource == "" {
		m.phase = phaseAsk
		m.adminInput.SetValue(opts.AskAdminSource)
	} else {
		m.phase = phasePlanning
	}
	m.sync()
	return m
}

// Run shows the wizard until the operator quits or ctx ends. It returns nil when the operator quit, whatever
// the steps' outcome: state.json (s.State) holds that, and the main package turns it into an exit code.
func Run(ctx context.Context, s *steps.Session, opts Options) error {
	if os.Getenv("NO_COLOR") != "" {
		opts.NoColor = true
	}
	m := New(s, opts)
	m.ctx = ctx
	defer s.Host.OnJournal(nil)
	popts := []tea.ProgramOption{
		tea.WithContext(ctx),
		tea.WithFilter(quitFilter),
	}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	if opts.NoColor {
		popts = append(popts, tea.WithColorProfile(colorprofile.NoTTY))
	}
	_, err := tea.NewProgram(m, popts...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// quitFilter turns the signals Bubble Tea would quit on (SIGINT, SIGTERM) into quit requests that Update
// can refuse while a step is being written, exactly like the q key; at other times they quit as usual.
func quitFilter(m tea.Model, msg tea.Msg) tea.Msg {
	switch msg.(type) {
	case tea.InterruptMsg:
		return quitRequestMsg{}
	case tea.QuitMsg:
		if mm, ok := m.(Model); ok && mm.writing() {
			return quitRequestMsg{}
		}
	}
	return msg
}

// Init cannot start the plan itself: it has a value receiver, so the generation the plan is tagged with
// would be lost. It asks Update to do it instead.
func (m Model) Init() tea.Cmd {
	if m.phase == phaseAsk {
		return nil
	}
	return func() tea.Msg { return beginMsg{} }
}

// Update never blocks: everything slow is started as a tea.Cmd and comes back as a message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := m.update(msg)
	m.sync()
	return m, cmd
}

func (m Model) update(msg tea.Msg) (Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.PasteMsg:
		return m.updateInput(msg)
	case quitRequestMsg:
		return m.quit()
	case beginMsg:
		if m.phase == phasePlanning && m.gen == 0 {
			return m.begin()
		}
		return m, nil
	case journalMsg:
		m.log = append(m.log, msg.lines...)
		if msg.done {
			return m, nil
		}
		return m, listenJournal(m.journal, msg.stop)
	case planMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		return m.planned(msg)
	case appliedMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.would = msg.would
		if m.dry {
			m.phase = phaseWould
			return m, nil
		}
		return m, m.startVerify()
	case verifiedMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.checks[msg.idx] = msg.checks
		m.phase, m.details = phaseVerified, false
		return m, nil
	case restartedMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		return m.restarted(msg), nil
	case confirmedMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.notice = "confirmation recorded; verifying again"
		return m, m.startVerify()
	case rolledBackMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.notice = rolledBackNotice(m.s.Steps[msg.idx].ID(), msg.paths)
		delete(m.checks, msg.idx)
		return m, m.startPlan()
	case auditMsg:
		m.audit = &msg
		return m, nil
	case opErrMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		return m.failed(msg)
	}
	return m, nil
}

func (m Model) planned(msg planMsg) (Model, tea.Cmd) {
	m.plans[msg.idx] = msg.plan
	if msg.saveErr != nil {
		m.notice = "could not save the admin source yet: " + firstLine(msg.saveErr.Error())
	}
	switch {
	case msg.plan.Blocked != "":
		m.phase = phaseBlocked
	case msg.plan.Empty():
		// Nothing to apply is the normal case on a second run: verify straight away, which is how drift shows.
		m.noChanges = true
		return m, m.startVerify()
	default:
		m.phase = phasePlan
	}
	return m, nil
}

func (m Model) failed(msg opErrMsg) (Model, tea.Cmd) {
	switch msg.op {
	case opPlan:
		if errors.Is(msg.err, steps.ErrNotAvailable) {
			m.unavailable[msg.idx] = true
			m.phase = phaseUnavailable
			return m, nil
		}
		m.planErr, m.phase = msg.err, phasePlanError
	case opApply:
		m.would = msg.would
		m.applyErr, m.phase, m.details = msg.err, phaseVerified, false
	case opRollback:
		m.notice = "rollback failed: " + firstLine(msg.err.Error())
		m.phase = phaseVerified
	case opConfirm:
		m.notice = "not recorded: " + firstLine(msg.err.Error())
		m.phase = phaseVerified
	case opAudit:
		m.auditErr = msg.err
	}
	return m, nil
}

func (m Model) handleKey(k tea.KeyPressMsg) (Model, tea.Cmd) {
	m.notice = ""
	switch m.phase {
	case phaseAsk:
		return m.updateAsk(k)
	case phaseRisk:
		if !key.Matches(k, m.keys.Esc) && k.String() != "ctrl+c" {
			return m.updateRisk(k)
		}
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		return m, nil
	case key.Matches(k, m.keys.Up):
		m.vp.ScrollUp(1)
		return m, nil
	case key.Matches(k, m.keys.Down):
		m.vp.ScrollDown(1)
		return m, nil
	case key.Matches(k, m.keys.PageUp):
		m.vp.PageUp()
		return m, nil
	case key.Matches(k, m.keys.PageDown):
		m.vp.PageDown()
		return m, nil
	case key.Matches(k, m.keys.Commands):
		m.showCmds = !m.showCmds
		return m, nil
	case key.Matches(k, m.keys.Prev):
		return m.moveReview(-1), nil
	case key.Matches(k, m.keys.Next):
		return m.moveReview(+1), nil
	}
	if m.reviewing() {
		if key.Matches(k, m.keys.Esc) {
			m.review = -1
		}
		// Review is read-only: nothing else may act on a step the operator is only looking at.
		return m, nil
	}
	return m.phaseKey(k)
}

func (m Model) phaseKey(k tea.KeyPressMsg) (Model, tea.Cmd) {
	ks := m.keys
	switch m.phase {
	case phasePlan:
		if key.Matches(k, ks.Enter) {
			if m.plan().Risk != "" && !m.riskOK {
				m.phase, m.riskErr = phaseRisk, ""
				m.riskInput.Reset()
				return m, nil
			}
			m.phase = phaseConfirm
		}
	case phaseConfirm:
		switch {
		case key.Matches(k, ks.Yes):
			return m, m.startApply()
		case key.Matches(k, ks.No, ks.Esc):
			m.phase = phasePlan
		case key.Matches(k, ks.Enter):
			m.notice = "press y to apply or n to go back; enter alone does not apply"
		}
	case phaseRisk: // only esc reaches here
		m.phase = phasePlan
	case phaseWould:
		if key.Matches(k, ks.Enter) {
			return m, m.startVerify()
		}
	case phaseVerified:
		switch {
		case key.Matches(k, ks.Enter):
			if !m.canAdvance() {
				m.notice = "this step has not passed: retry (r), roll it back (u), or quit and resume later (q)"
				return m, nil
			}
			return m.advance()
		case key.Matches(k, ks.Retry):
			return m, m.startPlan()
		case key.Matches(k, ks.Details):
			m.details = !m.details
		case key.Matches(k, ks.Rollback):
			m.phase = phaseConfirmRollback
		case key.Matches(k, ks.Confirm) && m.canConfirm():
			m.phase = phaseSwitches
		case key.Matches(k, ks.RestartDocker) && m.canRestartDocker():
			return m, m.startRestartDocker()
		case key.Matches(k, ks.Esc):
			m.details = false
		}
	case phaseSwitches:
		switch {
		case key.Matches(k, ks.Yes):
			return m, m.startConfirm()
		case key.Matches(k, ks.No, ks.Esc):
			m.phase = phaseVerified
		}
	case phaseConfirmRollback:
		switch {
		case key.Matches(k, ks.Yes):
			return m, m.startRollback()
		case key.Matches(k, ks.No, ks.Esc):
			m.phase = phaseVerified
		}
	case phaseBlocked, phasePlanError:
		switch {
		case key.Matches(k, ks.Retry):
			return m, m.startPlan()
		case m.dry && key.Matches(k, ks.Enter):
			// A dry run is a tour of every step's plan: a step that cannot go ahead here is shown, not passed.
			return m.advance()
		}
	case phaseUnavailable:
		switch {
		case key.Matches(k, ks.Skip):
			return m.advance()
		case key.Matches(k, ks.Retry):
			return m, m.startPlan()
		}
	case phaseFinal:
		if key.Matches(k, ks.Enter) {
			return m.quit()
		}
	}
	return m, nil
}

// canAdvance is the one rule the wizard exists to enforce: only a step whose checks all passed (or one
// that cannot be built in this version, which stays marked as not passed) lets the operator go on. In a
// dry run nothing was applied, so the checks describe the untouched system; going on is allowed there
// because nothing is recorded as passed.
func (m Model) canAdvance() bool {
	if m.phase == phaseUnavailable {
		return true
	}
	if m.phase != phaseVerified {
		return false
	}
	return m.dry || (m.applyErr == nil && steps.Passed(m.checks[m.cur]))
}

func (m Model) advance() (Model, tea.Cmd) {
	m.cur++
	m.review, m.details, m.log, m.would = -1, false, nil, nil
	return m.begin()
}

// begin plans the current step, or shows the final screen when there is none left.
func (m Model) begin() (Model, tea.Cmd) {
	if m.cur >= len(m.s.Steps) {
		m.phase = phaseFinal
		m.gen++
		return m, m.loadAudit()
	}
	return m, m.startPlan()
}

func (m Model) writing() bool { return m.phase == phaseApplying || m.phase == phaseRollingBack }

func (m Model) quit() (Model, tea.Cmd) {
	if m.writing() {
		m.notice = "applying; quitting now would leave it half-done"
		return m, nil
	}
	m.quitting = true
	return m, tea.Quit
}

func (m Model) reviewing() bool { return m.review >= 0 && m.review != m.cur }

func (m Model) busy() bool {
	switch m.phase {
	case phasePlanning, phaseApplying, phaseVerifying, phaseRollingBack, phaseAsk, phaseConfirming:
		return true
	}
	return false
}

// moveReview walks back through earlier steps (and forward again to the current one). It is refused while
// something runs, so the live log stays on screen for the step that is being changed.
func (m Model) moveReview(d int) Model {
	if m.busy() {
		return m
	}
	at := m.cur
	if m.reviewing() {
		at = m.review
	}
	at += d
	last := min(m.cur, len(m.s.Steps)-1)
	switch {
	case at < 0:
		return m
	case at >= m.cur || at > last:
		m.review = -1
	default:
		m.review = at
	}
	return m
}

// plan is the current step's last plan.
func (m Model) plan() steps.Plan { return m.plans[m.cur] }

// step is the step shown: the one reviewed, else the current one (nil on the final screen).
func (m Model) shown() (int, steps.Step) {
	i := m.cur
	if m.reviewing() {
		i = m.review
	}
	if i < 0 || i >= len(m.s.Steps) {
		return i, nil
	}
	return i, m.s.Steps[i]
}

// Messages. Every operation carries the generation it was started in.
type (
	planMsg struct {
		gen, idx int
		plan     steps.Plan
		saveErr  error
	}
	appliedMsg struct {
		gen, idx int
		would    []string
	}
	verifiedMsg struct {
		gen, idx int
		checks   []steps.Check
	}
	confirmedMsg struct {
		gen, idx int
	}
	rolledBackMsg struct {
		gen, idx int
		paths    []string
	}
	auditMsg struct {
		before, after string
		missing       bool // no Latest hook was supplied
	}
	quitRequestMsg struct{}
	beginMsg       struct{}
)

type op string

const (
	opPlan     op = "plan"
	opApply    op = "apply"
	opRollback op = "roll back"
	opAudit    op = "read the audit"
	opConfirm  op = "record the confirmation"
)

// opErrMsg is a failed operation; it is an error so it can be wrapped, logged and matched like one.
type opErrMsg struct {
	gen, idx int
	op       op
	err      error
	would    []string
}

func (e opErrMsg) Error() string { return fmt.Sprintf("%s: %v", e.op, e.err) }
func (e opErrMsg) Unwrap() error { return e.err }

func (m *Model) startPlan() tea.Cmd {
	m.gen++
	m.phase = phasePlanning
	m.riskOK, m.details, m.noChanges, m.applyErr, m.planErr = false, false, false, nil, nil
	s, ctx, gen, idx, save := m.s, m.ctx, m.gen, m.cur, m.saveFirst
	m.saveFirst = false
	st := s.Steps[idx]
	return func() tea.Msg {
		var saveErr error
		if save {
			// Saved here rather than in Update, which must not do I/O, and before Plan so the two never race.
			saveErr = s.State.Save(s.Host)
		}
		p, err := s.Plan(ctx, st)
		if err != nil {
			return opErrMsg{gen: gen, idx: idx, op: opPlan, err: err}
		}
		return planMsg{gen: gen, idx: idx, plan: p, saveErr: saveErr}
	}
}

func (m *Model) startApply() tea.Cmd {
	m.gen++
	m.phase = phaseApplying
	m.log, m.would = nil, nil
	s, ctx, gen, idx, p, dry := m.s, m.ctx, m.gen, m.cur, m.plan(), m.dry
	st := s.Steps[idx]
	stop := make(chan struct{})
	apply := func() tea.Msg {
		defer close(stop)
		if dry && !s.Host.DryRun {
			return opErrMsg{gen: gen, idx: idx, op: opApply,
				err: errors.New("refusing to apply: the wizard was started as a dry run but the host would really write")}
		}
		before := len(s.Host.Would())
		err := s.Apply(ctx, st, p)
		would := s.Host.Would()[before:]
		if err != nil {
			return opErrMsg{gen: gen, idx: idx, op: opApply, err: err, would: would}
		}
		return appliedMsg{gen: gen, idx: idx, would: would}
	}
	return tea.Batch(apply, listenJournal(m.journal, stop))
}

func (m *Model) startVerify() tea.Cmd {
	m.gen++
	m.phase = phaseVerifying
	s, ctx, gen, idx := m.s, m.ctx, m.gen, m.cur
	st := s.Steps[idx]
	stop := make(chan struct{})
	verify := func() tea.Msg {
		defer close(stop)
		return verifiedMsg{gen: gen, idx: idx, checks: s.Verify(ctx, st)}
	}
	// Probes a step runs while verifying are journalled too; they belong in this step's log.
	return tea.Batch(verify, listenJournal(m.journal, stop))
}

// canConfirm: a failed step that asks for the operator's confirmations (and a real run: a dry run records nothing).
func (m Model) canConfirm() bool {
	_, ok := m.s.Steps[m.cur].(steps.Confirmer)
	return ok && !m.dry && !steps.Passed(m.checks[m.cur])
}

// startConfirm records every listed confirmation, then verifies again: the checks decide, not the keypress.
func (m *Model) startConfirm() tea.Cmd {
	m.gen++
	m.phase = phaseConfirming
	s, gen, idx := m.s, m.gen, m.cur
	st := s.Steps[idx]
	c := st.(steps.Confirmer)
	var ids []string
	for _, x := range c.Confirmations(s.Answers) {
		ids = append(ids, x.ID)
	}
	return func() tea.Msg {
		if err := s.Confirm(st, ids); err != nil {
			return opErrMsg{gen: gen, idx: idx, op: opConfirm, err: err}
		}
		return confirmedMsg{gen: gen, idx: idx}
	}
}

func (m *Model) startRollback() tea.Cmd {
	m.gen++
	m.phase = phaseRollingBack
	s, gen, idx := m.s, m.gen, m.cur
	id := s.Steps[idx].ID()
	stop := make(chan struct{})
	rollback := func() tea.Msg {
		defer close(stop)
		paths, err := s.Rollback(id)
		if err != nil {
			return opErrMsg{gen: gen, idx: idx, op: opRollback, err: err}
		}
		return rolledBackMsg{gen: gen, idx: idx, paths: paths}
	}
	return tea.Batch(rollback, listenJournal(m.journal, stop))
}

func (m Model) loadAudit() tea.Cmd {
	hooks, ctx, gen, idx := m.opts.Audit, m.ctx, m.gen, m.cur
	return func() tea.Msg {
		if hooks.TakeAfter != nil {
			if err := hooks.TakeAfter(ctx); err != nil {
				return opErrMsg{gen: gen, idx: idx, op: opAudit, err: fmt.Errorf("taking the after snapshot: %w", err)}
			}
		}
		if hooks.Latest == nil {
			return auditMsg{missing: true}
		}
		before, after, err := hooks.Latest()
		if err != nil {
			return opErrMsg{gen: gen, idx: idx, op: opAudit, err: err}
		}
		return auditMsg{before: before, after: after}
	}
}

func rolledBackNotice(id int, paths []string) string {
	switch len(paths) {
	case 0:
		return fmt.Sprintf("Step %d rolled back: it had changed no files; planned again", id)
	case 1:
		return fmt.Sprintf("Step %d rolled back: restored %s; planned again", id, paths[0])
	}
	return fmt.Sprintf("Step %d rolled back: restored %d files (%s, …); planned again", id, len(paths), paths[0])
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Layout. The wide layout puts the step list in a left column; below wideAt columns it becomes one line on
// top so an 80×24 SSH session keeps most of its rows for the diff.
const (
	wideAt = 100
	listW  = 34
)

func (m Model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 {
		w = 80
	}
	if h <= 0 {
		h = 24
	}
	return w, h
}

// layout is the pane's size: the whole screen minus the header line (which carries the step strip at
// narrow widths), the step column at wide widths, and the footer (prompt line and help).
func (m Model) layout() (wide bool, paneW, paneH int) {
	w, h := m.size()
	foot := height(m.footerView(w))
	if w >= wideAt && m.phase != phaseAsk {
		return true, w - listW - 2, h - 1 - foot
	}
	return false, w, h - 1 - foot
}

// sync fits the viewport to the current screen. It runs at the end of every Update, so View only draws.
func (m *Model) sync() {
	_, pw, ph := m.layout()
	sc := m.screen(pw)
	vh := ph - 1 - height(sc.top)
	m.vp.SetWidth(pw)
	m.vp.SetHeight(max(vh, 1))
	m.vp.SetContent(sc.body)
	if sc.key != m.vpKey {
		m.vpKey = sc.key
		m.vp.GotoTop()
	}
	if sc.follow {
		m.vp.GotoBottom()
	}
}

// View is the only place a tea.View is made; every part below it is a plain string.
func (m Model) View() tea.View {
	w, h := m.size()
	wide, pw, ph := m.layout()
	sc := m.screen(pw)
	parts := []string{m.titleLine(pw)}
	if sc.top != "" {
		parts = append(parts, sc.top)
	}
	parts = append(parts, m.viewportView())
	pane := fitLines(strings.Join(parts, "\n"), pw, ph)
	body := pane
	if wide {
		body = lipgloss.JoinHorizontal(lipgloss.Top, m.stepColumn(listW, ph), "  ", pane)
	}
	footer := m.footerView(w)
	footY := h - height(footer)
	content := fitLines(m.headerView(w, !wide && m.phase != phaseAsk)+"\n"+body, w, footY) + "\n" + footer
	v := tea.NewView(fitLines(content, w, h))
	v.AltScreen = true
	v.WindowTitle = "openclaw-harden"
	v.Cursor = m.cursor(footY)
	return v
}

// headerView is the name, the step strip when there is no room for a column, and the dry-run banner,
// which wins the right-hand side over the pass count because it must never be missed.
// viewportView is the scrollable body, its last row turned into a hint while more is hidden below.
func (m Model) viewportView() string {
	v := m.vp.View()
	if m.vp.AtBottom() || m.vp.Height() < 3 {
		return v
	}
	lines := strings.Split(v, "\n")
	hint := fmt.Sprintf("↓ more below (%d%%): ↓/j or pgdn", int(m.vp.ScrollPercent()*100))
	lines[len(lines)-1] = m.st.dim.Render(clip(hint, m.vp.Width()))
	return strings.Join(lines, "\n")
}

func (m Model) headerView(w int, strip bool) string {
	left := m.st.header.Render("openclaw-harden")
	if strip {
		left += "  " + m.stepStrip()
	}
	right := m.st.dim.Render(m.passedCount())
	if m.dry {
		right = m.st.banner.Render(" DRY RUN: nothing is changed ")
	}
	return spread(left, right, w)
}

// footerView is the prompt line (a question, a text field, or a notice) and the help line.
func (m Model) footerView(w int) string {
	var line string
	switch {
	case m.phase == phaseAsk:
		line = m.adminInput.View()
	case m.phase == phaseRisk && !m.reviewing():
		line = m.riskInput.View()
	case m.notice != "":
		line = m.st.notice.Render(m.notice)
	case m.reviewing():
	case m.phase == phaseConfirm:
		line = m.confirmPrompt()
	case m.phase == phaseConfirmRollback:
		line = m.rollbackPrompt()
	case m.phase == phaseSwitches:
		line = m.st.prompt.Render("Did every command show what is expected?") + "  y confirm · n back"
	}
	hm := m.help
	hm.SetWidth(w)
	return clip(line, w) + "\n" + hm.View(m.helpKeys())
}

// cursor places the terminal's own cursor in the text field on the prompt line, at row y. A real cursor
// rather than a drawn one: a drawn cursor is reverse video, which NO_COLOR output must not contain.
func (m Model) cursor(y int) *tea.Cursor {
	var c *tea.Cursor
	switch {
	case m.phase == phaseAsk:
		c = tea.NewCursor(m.adminInput.Cursor(), y)
	case m.phase == phaseRisk && !m.reviewing():
		c = tea.NewCursor(m.riskInput.Cursor(), y)
	}
	if c != nil {
		c.Blink = false
	}
	return c
}

// helpKeys lists only what works on the screen shown; "?" adds scrolling and review keys.
func (m Model) helpKeys() helpKeys {
	k := m.keys
	quitCtrlC := key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))
	var short []key.Binding
	switch {
	case m.phase == phaseAsk:
		return helpKeys{short: []key.Binding{with(k.Enter, "accept"), quitCtrlC}}
	case m.reviewing():
		short = []key.Binding{k.Prev, k.Next, with(k.Esc, "back to current step"), k.Commands, k.Quit}
	default:
		switch m.phase {
		case phasePlan:
			short = []key.Binding{with(k.Enter, "confirm"), k.Commands, k.Prev, k.Quit}
		case phaseConfirm:
			short = []key.Binding{with(k.Yes, "apply"), with(k.No, "back to plan"), k.Commands, k.Quit}
		case phaseRisk:
			return helpKeys{short: []key.Binding{with(k.Enter, "accept the risk"), with(k.Esc, "back to plan"), quitCtrlC}}
		case phaseWould:
			short = []key.Binding{with(k.Enter, "verify (read-only)"), k.Quit}
		case phaseVerified:
			if m.canAdvance() {
				next := "next step"
				if !steps.Passed(m.checks[m.cur]) {
					next = "next (dry run)"
				}
				short = append(short, with(k.Enter, next))
			}
			if m.canConfirm() {
				short = append(short, k.Confirm)
			}
			short = append(short, k.Retry, k.Details, k.Rollback, k.Quit)
		case phaseConfirmRollback:
			short = []key.Binding{with(k.Yes, "roll back"), with(k.No, "keep")}
		case phaseSwitches:
			short = []key.Binding{with(k.Yes, "confirm all"), with(k.No, "back"), k.Down, k.Up}
		case phaseBlocked, phasePlanError:
			short = []key.Binding{k.Retry, k.Commands, k.Prev, k.Quit}
			if m.dry {
				short = append([]key.Binding{with(k.Enter, "next (dry run)")}, short...)
			}
		case phaseUnavailable:
			short = []key.Binding{k.Skip, k.Prev, k.Quit}
		case phaseFinal:
			short = []key.Binding{with(k.Enter, "quit"), with(k.Prev, "review the steps"), k.Quit}
		default: // planning, applying, verifying, rolling back: only looking is possible
			short = []key.Binding{k.Down, k.Up}
		}
	}
	rest := [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Prev, k.Next, k.Esc, k.Commands}, {k.Help, k.Quit}}
	first := without(short, rest)
	if m.phase == phaseVerified && m.canRestartDocker() {
		// Full help only: the short line is full on this screen, and the screen itself names the key.
		first = append(first, k.RestartDocker)
	}
	return helpKeys{short: append(short, k.Help), full: append([][]key.Binding{first}, rest...)}
}
