package app

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/storage"
)

// Go's profiles are served only with KAFSCALE_PPROF=true.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	o := StorageOptions(config.Defaults())
	o.Bucket, o.Endpoint, o.AccessKey, o.SecretKey = "b", "http://127.0.0.1:1", "a", "s"
	objects, err := storage.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer objects.Close()
	var ready atomic.Bool
	for _, tc := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		h := httpHandler(prometheus.NewRegistry(), &ready, objects, tc.pprof)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != tc.want {
				t.Errorf("pprof=%v: GET %s = %d, want %d", tc.pprof, path, rec.Code, tc.want)
			}
		}
	}
}

// The registration publishes a listener's own address when it is bound to one, and the
// advertised host with the listener's port when it listens on every address (":9093").
func TestPublishedAddr(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:0", "127.0.0.1:"},
		{":0", "10.1.2.3:"},
	} {
		ln, err := net.Listen("tcp", tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		if got := publishedAddr(ln, "10.1.2.3"); got != tc.want+port {
			t.Errorf("listen %s: published %q, want %q", tc.listen, got, tc.want+port)
		}
		ln.Close()
	}
}
