package fakedidit

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// pageView is what a hosted page shows.
type pageView struct {
	Notice          string
	ID              string
	Number          int
	Status          string
	VendorData      string
	WorkflowID      string
	WorkflowVersion int
	Callback        string
	Language        string
	User, Reviewer  []choice
	Deliveries      []deliveryView
}

// deliveryView is one attempt of a webhook of the session.
type deliveryView struct {
	At, Type, Status, Answer, URL string
}

// renderPage writes the hosted page of session id with code, and notice
// (why a choice was refused) if any.
func (s *Server) renderPage(w http.ResponseWriter, id string, code int, notice string) {
	s.mu.Lock()
	ss := s.sessions[id]
	v := pageView{Notice: notice, ID: ss.id, Number: ss.number, Status: ss.status, VendorData: ss.vendorData,
		WorkflowID: ss.hosted.workflowID, WorkflowVersion: ss.hosted.workflowVersion, Callback: ss.hosted.callback,
		Language: ss.hosted.language}
	s.mu.Unlock()
	for _, ch := range choices {
		for _, from := range ch.from {
			if string(from) != v.Status {
				continue
			}
			if ch.reviewer {
				v.Reviewer = append(v.Reviewer, ch)
			} else {
				v.User = append(v.User, ch)
			}
		}
	}
	for _, rec := range s.Deliveries() {
		if rec.SessionID != id {
			continue
		}
		answer := "no answer"
		if rec.ResponseStatus != 0 {
			answer = strconv.Itoa(rec.ResponseStatus)
		}
		ev, _ := parseEvent(rec.RequestBody)
		v.Deliveries = append(v.Deliveries, deliveryView{At: rec.CreatedAt.UTC().Format(time.TimeOnly), Type: rec.WebhookType,
			Status: ev.str("status"), Answer: answer + " " + rec.Status, URL: rec.RequestURL})
	}
	var buf bytes.Buffer
	if err := hostedPage.Execute(&buf, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// hostedPage is the hosted verification page: plain HTML forms, no script.
var hostedPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{or .Language "en"}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Verify your identity · Didit (fake)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
.fake { background: #fff4d6; border: 1px solid #e7c35a; padding: .6rem .8rem; border-radius: 6px; }
.notice { background: #fde2e1; border: 1px solid #e08c88; padding: .6rem .8rem; border-radius: 6px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { font-weight: 600; }
ul.choices { list-style: none; padding: 0; }
ul.choices li { margin: .4rem 0; }
button { font: inherit; padding: .4rem .8rem; cursor: pointer; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #dde; }
</style>
</head>
<body>
<p class="fake">The fake Didit's hosted verification page, part of diditflow's test harness. Nothing is
checked here: pick what the user does, and the fake sends the signed webhooks Didit would.</p>
<h1>Verify your identity</h1>
{{with .Notice}}<p class="notice" role="alert">{{.}}</p>{{end}}
<dl>
<dt>Status</dt><dd id="status">{{.Status}}</dd>
<dt>Session</dt><dd>#{{.Number}} <code>{{.ID}}</code></dd>
<dt>Vendor data</dt><dd>{{or .VendorData "none"}}</dd>
<dt>Workflow</dt><dd><code>{{.WorkflowID}}</code>, version {{.WorkflowVersion}}</dd>
<dt>Callback</dt><dd>{{with .Callback}}<code>{{.}}</code>{{else}}none{{end}}</dd>
</dl>
{{with .User}}
<section id="user">
<h2>What the user does</h2>
{{template "choices" .}}
</section>
{{end}}
{{with .Reviewer}}
<section id="console">
<h2>Later, in Didit's console</h2>
{{template "choices" .}}
</section>
{{end}}
<section id="webhooks">
<h2>Webhooks sent</h2>
{{if .Deliveries}}
<table>
<thead><tr><th>Sent (UTC)</th><th>Type</th><th>Status</th><th>Answer</th><th>To</th></tr></thead>
<tbody>
{{range .Deliveries}}<tr><td>{{.At}}</td><td>{{.Type}}</td><td>{{.Status}}</td><td>{{.Answer}}</td><td><code>{{.URL}}</code></td></tr>
{{end}}</tbody>
</table>
{{else}}
<p>None yet.</p>
{{end}}
<p>Reload to see the ones in flight: a step is sent when it happens, a second after the one
before, and a failed delivery is retried as Didit retries it.</p>
</section>
</body>
</html>
{{define "choices"}}<form method="post">
<ul class="choices">
{{range .}}<li><button type="submit" name="choice" value="{{.Choice}}">{{.Label}}</button></li>
{{end}}</ul>
</form>{{end}}`))
