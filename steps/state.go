package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"openclaw-harden/system"
)

// Status is where a step stands.
type Status string

const (
	StatusPending     Status = "pending"
	StatusApplying    Status = "applying"    // written before Apply starts, so a crash is visible next time
	StatusInterrupted Status = "interrupted" // was applying when the process died; it is re-planned
	StatusApplied     Status = "applied"     // applied, not verified yet
	StatusPassed      Status = "passed"
	StatusFailed      Status = "failed"
	StatusBlocked     Status = "blocked"
	StatusUnavailable Status = "not available yet"
)

// StepState is one step's record in state.json.
type StepState struct {
	Status  Status    `json:"status"`
	Updated time.Time `json:"updated"`
	Message string    `json:"message,omitempty"`
}

// State is state.json: the answers and each step's status, so the wizard resumes where it stopped.
type State struct {
	Version  int                   `json:"version"`
	Answers  *Answers              `json:"answers,omitempty"`
	Steps    map[string]*StepState `json:"steps"`
	Baseline string                `json:"baseline,omitempty"` // audits/… file of the before snapshot
	// Survival records, per Survivor step (Step 4), what its passing verifications proved it outlives.
	Survival map[string]*Survival `json:"survival,omitempty"`
}

const stateFile = "state.json"

// LoadState reads state.json; a missing file is a fresh start. A step found "applying" was cut off
// mid-apply, so it is marked interrupted and will be re-planned.
func LoadState(h *system.Host) (*State, error) {
	s := &State{Version: 1, Steps: map[string]*StepState{}}
	data, err := h.LoadState(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s/%s is not a state file this tool wrote (%v); move it away to start afresh", h.StateDir, stateFile, err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("%s/%s has version %d; this tool reads version 1", h.StateDir, stateFile, s.Version)
	}
	if s.Steps == nil {
		s.Steps = map[string]*StepState{}
	}
	for _, st := range s.Steps {
		if st.Status == StatusApplying {
			st.Status = StatusInterrupted
			st.Message = "the previous run stopped while this step was being applied; it is planned again"
		}
	}
	return s, nil
}

// Save writes state.json atomically (never in dry-run mode).
func (s *State) Save(h *system.Host) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return h.SaveState(stateFile, append(data, '\n'))
}

// Get returns a step's record, pending when it has none.
func (s *State) Get(id int) StepState {
	if st, ok := s.Steps[strconv.Itoa(id)]; ok && st != nil {
		return *st
	}
	return StepState{Status: StatusPending}
}

// Set records a step's status.
func (s *State) Set(id int, st Status, msg string, now time.Time) {
	s.Steps[strconv.Itoa(id)] = &StepState{Status: st, Updated: now.UTC(), Message: msg}
}

// Resume is the index in steps of the first step that has not passed (len(steps) when all have).
func (s *State) Resume(steps []Step) int {
	for i, st := range steps {
		if s.Get(st.ID()).Status != StatusPassed {
			return i
		}
	}
	return len(steps)
}
