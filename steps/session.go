package steps

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"openclaw-harden/system"
)

// Session drives steps for the wizard and the headless commands alike: it runs Plan/Apply/Verify and keeps
// state.json in step with what happened, so both front ends resume and refuse the same way.
type Session struct {
	Host    *system.Host
	Answers Answers
	State   *State
	Steps   []Step

	mu sync.Mutex
}

// NewSession loads nothing itself: callers load state and answers and hand them in.
func NewSession(h *system.Host, a Answers, st *State) *Session {
	if st == nil {
		st = &State{Version: 1, Steps: map[string]*StepState{}}
	}
	aa := a
	st.Answers = &aa
	return &Session{Host: h, Answers: a, State: st, Steps: All()}
}

func (s *Session) set(id int, status Status, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.State.Set(id, status, msg, s.Host.Now())
	// A state file that cannot be written must not stop the step; the error surfaces on the next save.
	_ = s.State.Save(s.Host)
}

// Status reads a step's recorded status.
func (s *Session) Status(id int) StepState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.State.Get(id)
}

// Plan runs the step's read-only Plan and records when it cannot go ahead.
func (s *Session) Plan(ctx context.Context, st Step) (Plan, error) {
	p, err := s.PlanReadOnly(ctx, st)
	switch {
	case errors.Is(err, ErrNotAvailable):
		s.set(st.ID(), StatusUnavailable, ErrNotAvailable.Error())
	case err == nil && p.Blocked != "":
		s.set(st.ID(), StatusBlocked, p.Blocked)
	}
	return p, err
}

// PlanReadOnly is Plan without recording anything (the plan command leaves state.json as it was); it shows
// the same plan, including the reload that finishes an interrupted apply.
func (s *Session) PlanReadOnly(ctx context.Context, st Step) (Plan, error) {
	if !Available(st) {
		return Plan{Step: st.ID(), Title: st.Title()}, ErrNotAvailable
	}
	p, err := st.Plan(ctx, s.Host, s.Answers)
	p.Step, p.Title = st.ID(), st.Title()
	// Notes and guard sentences may quote what a command printed: they are shown, so they are redacted.
	for i := range p.Notes {
		p.Notes[i] = s.Host.Redact(p.Notes[i])
	}
	p.Blocked, p.Risk = s.Host.Redact(p.Blocked), s.Host.Redact(p.Risk)
	if err != nil {
		return p, RedactError(s.Host, err)
	}
	if p.Blocked != "" {
		return p, nil
	}
	if _, ok := st.(Reloader); ok && s.Status(st.ID()).Status == StatusInterrupted {
		p.Changes = append(p.Changes, Change{Target: finishTarget, Kind: "state",
			Before: "the last apply of this step was cut off: its files may be written but not yet in effect\n",
			After:  "reloaded, so the running service uses the files as they are now\n"})
	}
	return p, nil
}

// finishTarget names the change a re-plan adds for a step whose apply was interrupted (see Reloader).
const finishTarget = "finish the interrupted apply (reload)"

// finishing reports whether p carries the reload of an interrupted apply, and whether that is all it carries.
func finishing(p Plan) (finish, only bool) {
	pending := 0
	for _, c := range p.Pending() {
		if c.Target == finishTarget && c.Kind == "state" {
			finish = true
		} else {
			pending++
		}
	}
	return finish, finish && pending == 0
}

// ErrBlocked is returned by Apply when a guard refused the plan.
var ErrBlocked = errors.New("blocked by a safety check")

// Apply carries out a plan. The step is marked applying first, so a crash leaves a visible trace.
func (s *Session) Apply(ctx context.Context, st Step, p Plan) error {
	if p.Blocked != "" {
		return fmt.Errorf("%w: %s", ErrBlocked, p.Blocked)
	}
	if !Available(st) {
		return ErrNotAvailable
	}
	s.Host.SetStep(st.ID())
	defer s.Host.SetStep(-1)
	if p.Empty() {
		return nil
	}
	s.set(st.ID(), StatusApplying, "")
	finish, only := finishing(p)
	if !only {
		if err := st.Apply(ctx, s.Host, p); err != nil {
			err = RedactError(s.Host, err) // it may quote what a command printed (compose echoing .env values)
			s.set(st.ID(), StatusFailed, "apply: "+firstLine(err.Error()))
			return err
		}
	}
	if r, ok := st.(Reloader); ok && finish {
		if err := r.Reload(ctx, s.Host); err != nil {
			err = RedactError(s.Host, err)
			s.set(st.ID(), StatusFailed, "reload after the interrupted apply: "+firstLine(err.Error()))
			return fmt.Errorf("reloading after the interrupted apply: %w", err)
		}
	}
	if name, ok := PlannedBaseline(p); ok {
		s.mu.Lock()
		s.State.SetBaseline(name)
		s.mu.Unlock()
	}
	s.set(st.ID(), StatusApplied, "")
	return nil
}

// Verify runs the step's checks and records passed only when there was at least one and all passed.
func (s *Session) Verify(ctx context.Context, st Step) []Check {
	prev := s.Status(st.ID()).Status
	cs := st.Verify(ctx, s.Host, s.Answers)
	for i := range cs {
		cs[i].Step = st.ID()
		cs[i].Got = s.Host.Redact(cs[i].Got)
		cs[i].Reason = s.Host.Redact(cs[i].Reason)
	}
	s.recordSurvival(ctx, st, prev, Available(st) && Passed(cs)) // saved with the status below
	switch {
	case !Available(st):
		s.set(st.ID(), StatusUnavailable, ErrNotAvailable.Error())
	case Passed(cs):
		s.set(st.ID(), StatusPassed, fmt.Sprintf("%d checks passed", len(cs)))
	default:
		failed := 0
		for _, c := range cs {
			if !c.OK {
				failed++
			}
		}
		s.set(st.ID(), StatusFailed, fmt.Sprintf("%d of %d checks failed", failed, len(cs)))
	}
	return cs
}

// Rollback restores the files a step changed (every step when id < 0) and marks it pending again.
func (s *Session) Rollback(id int) ([]string, error) {
	before, _ := s.Host.Backups()
	paths, err := s.Host.Rollback(id)
	if err != nil {
		return paths, err
	}
	touched := map[int]bool{}
	for _, e := range before {
		if id < 0 || e.Step == id {
			touched[e.Step] = true
		}
	}
	var reloadErr error
	for _, st := range s.Steps {
		if id >= 0 && st.ID() != id {
			continue
		}
		if r, ok := st.(Reloader); ok && touched[st.ID()] && len(paths) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			if err := r.Reload(ctx, s.Host); err != nil && reloadErr == nil {
				reloadErr = fmt.Errorf("step %d: files restored, but reloading what uses them failed: %w", st.ID(), RedactError(s.Host, err))
			}
			cancel()
		}
		if len(paths) > 0 || id >= 0 {
			s.set(st.ID(), StatusPending, "rolled back")
		}
	}
	return paths, reloadErr
}

// Resume is the index of the first step that has not passed.
func (s *Session) Resume() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.State.Resume(s.Steps)
}

// redactedError is an error whose text has the Host's secrets replaced; errors.Is/As still see the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactError returns err with every secret registered with h replaced by <redacted> in its text (err itself
// when there is nothing to replace). Errors quote what commands and servers printed, which may hold a token.
func RedactError(h *system.Host, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := h.Redact(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// Confirm records the operator's confirmations for a step that needs them (see Confirmer).
func (s *Session) Confirm(st Step, ids []string) error {
	c, ok := st.(Confirmer)
	if !ok {
		return fmt.Errorf("step %d has nothing to confirm by hand", st.ID())
	}
	return c.Confirm(s.Host, s.Answers, ids)
}
