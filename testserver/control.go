package testserver

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The control API (enabled by WithFaultControl) lives at /__ds/testserver/
// and, equally, at {prefix}__ds/testserver/:
//
//	POST   faults    body: one fault object or an array of them → 204
//	DELETE faults    clear every fault → 204
//	GET    requests  ?path=P&method=M → {"count":N,"requests":[{"path","method","count"}...]}
//	DELETE requests  reset the counters → 204
//
// A fault object has the fields of Fault in lower camel case (path, method,
// status, retryAfter, delay, drop, truncate, afterApply, count,
// probability). Durations are Go duration strings ("250ms") or numbers of
// milliseconds. Paths take every form Requests and InjectFault take. The
// package documentation describes the API for users.

// controlPath reports whether p addresses the control API and returns the
// part after ".../__ds/testserver/".
func (s *Server) controlPath(p string) (string, bool) {
	if strings.HasPrefix(p, controlPrefix) {
		return p[len(controlPrefix):], true
	}
	if alt := s.cfg.prefix + controlPrefix[1:]; strings.HasPrefix(p, alt) {
		return p[len(alt):], true
	}
	return "", false
}

type wireDuration time.Duration

func (d *wireDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = wireDuration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = wireDuration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

type wireFault struct {
	Path        string       `json:"path"`
	Method      string       `json:"method"`
	Status      int          `json:"status"`
	RetryAfter  wireDuration `json:"retryAfter"`
	Delay       wireDuration `json:"delay"`
	Drop        bool         `json:"drop"`
	Truncate    bool         `json:"truncate"`
	AfterApply  bool         `json:"afterApply"`
	Count       int          `json:"count"`
	Probability float64      `json:"probability"`
}

func (wf wireFault) fault() Fault {
	return Fault{
		Path: wf.Path, Method: strings.ToUpper(wf.Method), // InjectFault takes every form of path
		Status: wf.Status, RetryAfter: time.Duration(wf.RetryAfter), Delay: time.Duration(wf.Delay),
		Drop: wf.Drop, Truncate: wf.Truncate, AfterApply: wf.AfterApply,
		Count: wf.Count, Probability: wf.Probability,
	}
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, p string) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case p == "faults" && r.Method == http.MethodPost:
		body, status, msg := s.readBody(w, r)
		if status != 0 {
			httpError(w, status, msg)
			return
		}
		var list []wireFault
		trimmed := trimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			if err := json.Unmarshal(trimmed, &list); err != nil {
				httpError(w, http.StatusBadRequest, "bad fault JSON: "+err.Error())
				return
			}
		} else {
			var one wireFault
			if err := json.Unmarshal(trimmed, &one); err != nil {
				httpError(w, http.StatusBadRequest, "bad fault JSON: "+err.Error())
				return
			}
			list = append(list, one)
		}
		for _, wf := range list {
			if wf.Status != 0 && (wf.Status < 100 || wf.Status > 999) {
				httpError(w, http.StatusBadRequest, "bad fault status")
				return
			}
		}
		for _, wf := range list {
			s.InjectFault(wf.fault())
		}
		w.WriteHeader(http.StatusNoContent)
	case p == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case p == "requests" && r.Method == http.MethodGet:
		q := r.URL.Query()
		path, method := s.relPath(q.Get("path")), strings.ToUpper(q.Get("method"))
		type row struct {
			Path   string `json:"path"`
			Method string `json:"method"`
			Count  int    `json:"count"`
		}
		out := struct {
			Count    int   `json:"count"`
			Requests []row `json:"requests"`
		}{Count: s.Requests(path, method), Requests: []row{}}
		s.counters.mu.Lock()
		for k, v := range s.counters.m {
			if (path == "" || k.path == path) && (method == "" || k.method == method) {
				out.Requests = append(out.Requests, row{k.path, k.method, v})
			}
		}
		s.counters.mu.Unlock()
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	case p == "requests" && r.Method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	default:
		httpError(w, http.StatusNotFound, "unknown control endpoint")
	}
}
