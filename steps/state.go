package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
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

	// touched names what this run changed since it last saved ("steps/4", "survival/4", "baseline"): Save
	// writes those onto the file as it is on disk now, so concurrent runs keep each other's records.
	touched map[string]bool
}

func (s *State) touch(key string) {
	if s.touched == nil {
		s.touched = map[string]bool{}
	}
	s.touched[key] = true
}

// SetBaseline records the Step 1 baseline snapshot's file.
func (s *State) SetBaseline(name string) {
	s.Baseline = name
	s.touch("baseline")
}

// setSurvival records (or, with nil, drops) a Survivor step's record.
func (s *State) setSurvival(key string, sv *Survival) {
	if sv == nil {
		delete(s.Survival, key)
	} else {
		if s.Survival == nil {
			s.Survival = map[string]*Survival{}
		}
		s.Survival[key] = sv
	}
	s.touch("survival/" + key)
}

const stateFile = "state.json"

// LoadState reads state.json; a missing file is a fresh start. A step found "applying" was cut off
// mid-apply, so it is marked interrupted and will be re-planned.
func LoadState(h *system.Host) (*State, error) {
	data, err := h.LoadState(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1, Steps: map[string]*StepState{}}, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("%s/%s %v", h.StateDir, stateFile, err)
	}
	for _, st := range s.Steps {
		if st.Status == StatusApplying {
			st.Status = StatusInterrupted
			st.Message = "the previous run stopped while this step was being applied; it is planned again"
		}
	}
	return s, nil
}

// parseState reads state.json's bytes as they are (a step "applying" stays so); the error completes the
// sentence "state.json …".
func parseState(data []byte) (*State, error) {
	s := &State{Version: 1}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("is not a state file this tool wrote (%v); move it away to start afresh", err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("has version %d; this tool reads version 1", s.Version)
	}
	if s.Steps == nil {
		s.Steps = map[string]*StepState{}
	}
	return s, nil
}

// Save writes state.json atomically (never in dry-run mode): what this run changed since its last save,
// onto the file as another run may have left it meanwhile (concurrent verifies each record their steps).
// The answers are always this run's.
func (s *State) Save(h *system.Host) error {
	err := h.UpdateState(stateFile, func(cur []byte) ([]byte, error) {
		out := s
		if disk, err := parseState(cur); cur != nil && err == nil {
			out = disk.overlay(s)
		}
		data, err := json.MarshalIndent(out, "", "  ")
		return append(data, '\n'), err
	})
	if err == nil {
		s.touched = nil
	}
	return err
}

// overlay puts what s touched, and its answers, onto d (the file on disk) and returns d.
func (d *State) overlay(s *State) *State {
	d.Answers = s.Answers
	for key := range s.touched {
		kind, id, _ := strings.Cut(key, "/")
		switch kind {
		case "steps":
			if st := s.Steps[id]; st != nil {
				d.Steps[id] = st
			} else {
				delete(d.Steps, id)
			}
		case "survival":
			if sv := s.Survival[id]; sv != nil {
				if d.Survival == nil {
					d.Survival = map[string]*Survival{}
				}
				d.Survival[id] = sv
			} else {
				delete(d.Survival, id)
			}
		case "baseline":
			d.Baseline = s.Baseline
		}
	}
	return d
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
	s.touch("steps/" + strconv.Itoa(id))
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
