package httppost

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDoSendsBodyAndHeaders(t *testing.T) {
	var got struct {
		body, contentType, method string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.body, got.contentType, got.method = string(b), r.Header.Get("Content-Type"), r.Method
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	defer srv.Close()
	h := http.Header{"Content-Type": {"application/json"}}
	status, err := Do(context.Background(), srv.Client(), srv.URL, h, []byte(`{"a":1}`))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("Do = %d, %v; want 202", status, err)
	}
	if got.body != `{"a":1}` || got.contentType != "application/json" || got.method != http.MethodPost {
		t.Fatalf("server saw %+v", got)
	}
}

func TestDoKeepsTheURLOutOfErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Do(context.Background(), http.DefaultClient, "http://"+addr+"/hook?token=s3cret", nil, nil)
	if err == nil {
		t.Fatal("post to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "/hook") {
		t.Fatalf("error quotes the URL: %v", err)
	}
}
