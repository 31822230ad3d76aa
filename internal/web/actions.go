package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"banger/api"
)

// actionTimeout bounds a start, stop or delete run from the UI.
const actionTimeout = 10 * time.Minute

// action is something the UI can do to a VM, after confirmation.
type action struct {
	Verb    string        // start, stop, delete
	From    []api.VMState // states it applies to
	Explain string
	run     func(s *Server, ctx context.Context, name string) error
}

var actions = map[string]action{
	"start": {
		Verb: "start", From: []api.VMState{api.VMStopped, api.VMError, api.VMSuspended},
		Explain: "Boot the VM with its existing disks; a suspended VM resumes from its saved memory.",
		run: func(s *Server, ctx context.Context, name string) error {
			_, err := s.d.StartVM(ctx, name, nil)
			return err
		},
	},
	"stop": {
		Verb: "stop", From: []api.VMState{api.VMRunning, api.VMPaused},
		Explain: "Shut the guest down gracefully (agent, then the VMM's power button, then signals). /root is kept.",
		run: func(s *Server, ctx context.Context, name string) error {
			_, err := s.d.StopVM(ctx, name)
			return err
		},
	},
	"delete": {
		Verb: "delete", From: []api.VMState{api.VMRunning, api.VMPaused, api.VMStopped, api.VMError, api.VMSuspended},
		Explain: "Stop the VM if it runs and remove it with its disks, address and TAP. This cannot be undone.",
		run: func(s *Server, ctx context.Context, name string) error {
			return s.d.DeleteVM(ctx, name, false)
		},
	},
}

// confirmView is the confirmation page of an action.
type confirmView struct {
	action
	Name  string
	State api.VMState
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, ok := actions[r.URL.Query().Get("action")]
	if !ok {
		s.fail(w, r, http.StatusBadRequest, "unknown action; use start, stop or delete")
		return
	}
	v, err := s.d.VM(r.Context(), name)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !slices.Contains(a.From, v.State) {
		s.fail(w, r, http.StatusConflict, fmt.Sprintf("cannot %s vm %s while it is %s", a.Verb, name, v.State))
		return
	}
	vv := newVMView(v, api.VMStats{}, time.Now())
	s.render(w, r, http.StatusOK, "confirm", page{Title: a.Verb + " " + name, VM: &vv, Confirm: &confirmView{action: a, Name: name, State: v.State}})
}

// act runs a confirmed action in the background and sends the browser
// back; the outcome arrives as a notice and as the VM's live state.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, ok := actions[r.PathValue("action")]
	if !ok {
		s.fail(w, r, http.StatusNotFound, "unknown action; use start, stop or delete")
		return
	}
	v, err := s.d.VM(r.Context(), name)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !slices.Contains(a.From, v.State) {
		s.fail(w, r, http.StatusConflict, fmt.Sprintf("cannot %s vm %s while it is %s", a.Verb, name, v.State))
		return
	}
	s.notices.add("info", fmt.Sprintf("%s of vm %s requested", a.Verb, name))
	s.ops.Go(func() {
		ctx, cancel := context.WithTimeout(s.life, actionTimeout)
		defer cancel()
		if err := a.run(s, ctx, name); err != nil {
			s.log.Warn("web ui action failed", "action", a.Verb, "vm", name, "err", err)
			s.notices.add("error", fmt.Sprintf("%s of vm %s failed: %v", a.Verb, name, err))
			return
		}
		s.notices.add("info", fmt.Sprintf("%s of vm %s done", a.Verb, name))
	})
	to := "/vms/" + name
	if a.Verb == "delete" {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// notice is a line about the UI's own actions.
type notice struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Text  string    `json:"text"`
}

// notices keeps the latest few.
type notices struct {
	mu   sync.Mutex
	list []notice // oldest first
	seq  int64
}

const keepNotices = 10

func (n *notices) add(level, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	n.list = append(n.list, notice{Seq: n.seq, Time: time.Now(), Level: level, Text: text})
	if len(n.list) > keepNotices {
		n.list = n.list[len(n.list)-keepNotices:]
	}
}

// since returns notices newer than seq, newest first.
func (n *notices) since(seq int64) []notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notice
	for i := len(n.list) - 1; i >= 0 && n.list[i].Seq > seq; i-- {
		out = append(out, n.list[i])
	}
	return out
}

func (n *notices) last() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}
