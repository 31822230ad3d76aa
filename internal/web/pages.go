package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
)

// agentTimeout bounds the guest calls a page makes.
const agentTimeout = 3 * time.Second

// page is what every template gets; each page fills its part.
type page struct {
	Title   string
	Token   string   // CSRF token for forms
	Live    string   // the live stream's URL; empty on static pages
	Notices []notice // newest first

	VMs     []vmView
	Blank   vmView // the row template new VMs are drawn from
	Images  []api.Image
	Kernels []api.Kernel
	Events  []api.LogEntry // newest first

	// The dashboard's templates, and the one a delete confirms.
	Templates []api.Template
	Template  *api.Template

	VM          *vmView
	Sessions    []api.Session
	SessionsErr string
	Session     *api.Session
	Confirm     *confirmView
	Message     string // error pages
}

var funcs = template.FuncMap{
	"ago":   ago,
	"bytes": func(n int64) string { return bytesize.Format(uint64(max(n, 0))) },
	"when":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"hasState": func(state api.VMState, states ...string) bool {
		return slices.Contains(states, string(state))
	},
	// dict passes named values to a sub-template.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Token = s.token(w, r)
	p.Notices = s.notices.since(0)
	p.Notices = p.Notices[:min(len(p.Notices), 5)]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := s.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		s.log.Warn("rendering web page", "page", name, "err", err)
	}
}

// fail shows an error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", page{Title: http.StatusText(code), Message: msg})
}

// failErr shows err with the status its kind maps to.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		code = http.StatusNotFound
	case errdefs.KindConflict:
		code = http.StatusConflict
	case errdefs.KindInvalid:
		code = http.StatusBadRequest
	case errdefs.KindUnavailable:
		code = http.StatusServiceUnavailable
	}
	s.fail(w, r, code, err.Error())
}

// liveURL is the live stream for a page showing events of subject.
func (s *Server) liveURL(subject string, after int64) string {
	q := url.Values{"after": {fmt.Sprint(after)}, "notice": {fmt.Sprint(s.notices.last())}}
	if subject != "" {
		q.Set("subject", subject)
	}
	return "/live?" + q.Encode()
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	vms, err := s.vmViews(ctx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	p := page{Title: "VMs", VMs: vms, Blank: vmView{State: api.VMStopped, Uptime: "-", CPU: "-", Mem: "-", IP: "-"}}
	if p.Images, err = s.d.Images(ctx); err != nil {
		s.failErr(w, r, err)
		return
	}
	if p.Templates, err = s.d.Templates(ctx); err != nil {
		s.failErr(w, r, err)
		return
	}
	if p.Kernels, err = s.d.Kernels(ctx); err != nil {
		s.failErr(w, r, err)
		return
	}
	after := s.events(ctx, "", &p)
	p.Live = s.liveURL("", after)
	s.render(w, r, http.StatusOK, "index", p)
}

// events fills p.Events, newest first, and returns the newest ID.
func (s *Server) events(ctx context.Context, subject string, p *page) int64 {
	evs, err := s.d.Events(ctx, subject, 0, 50)
	if err != nil || len(evs) == 0 {
		return 0
	}
	slices.Reverse(evs)
	p.Events = evs
	return evs[0].ID
}

func (s *Server) vmPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	v, err := s.d.VM(ctx, name)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	st, _ := s.d.VMStats(ctx, name, sparkSamples)
	vv := newVMView(v, st, time.Now())
	p := page{Title: "vm " + name, VM: &vv}
	if v.State == api.VMRunning {
		p.Sessions, p.SessionsErr = s.sessions(ctx, name)
	}
	after := s.events(ctx, "vm/"+name, &p)
	p.Live = s.liveURL("vm/"+name, after)
	s.render(w, r, http.StatusOK, "vm", p)
}

func (s *Server) sessions(ctx context.Context, vm string) ([]api.Session, string) {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	ss, err := s.d.Sessions(ctx, vm)
	if err != nil {
		return nil, err.Error()
	}
	return ss, ""
}

func (s *Server) sessionPage(w http.ResponseWriter, r *http.Request) {
	name, sname := r.PathValue("name"), r.PathValue("session")
	ss, msg := s.sessions(r.Context(), name)
	if msg != "" {
		s.fail(w, r, http.StatusServiceUnavailable, msg)
		return
	}
	i := slices.IndexFunc(ss, func(x api.Session) bool { return x.Name == sname })
	if i < 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("vm %s has no session %q", name, sname))
		return
	}
	v, err := s.d.VM(r.Context(), name)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	vv := newVMView(v, api.VMStats{}, time.Now())
	s.render(w, r, http.StatusOK, "session", page{Title: "session " + sname + " on " + name, VM: &vv, Session: &ss[i]})
}
