package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"openclaw-harden/system"
)

// Every check Session.Verify returns carries its step, in Go and in JSON (step 0 included: no omitempty).
func TestVerifySetsStepOnEveryCheck(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	s := NewSession(h, Defaults(), nil)
	for _, st := range []Step{fileStep{id: 0, path: "/etc/a", content: "a\n"}, fileStep{id: 5, path: "/etc/b", content: "b\n"}, notYet{id: 7, title: "later"}} {
		cs := s.Verify(context.Background(), st)
		if len(cs) == 0 {
			t.Fatalf("step %d: no checks", st.ID())
		}
		for _, c := range cs {
			if c.Step != st.ID() {
				t.Errorf("step %d: check %s has step %d", st.ID(), c.ID, c.Step)
			}
			data, _ := json.Marshal(c)
			if want := `"step":` + string(rune('0'+st.ID())) + `,`; !strings.Contains(string(data), want) {
				t.Errorf("step %d: JSON %s lacks %s", st.ID(), data, want)
			}
		}
	}
}
