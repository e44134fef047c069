package local

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// The local platform runs the console with a login generated for the run, prints where it
// is and how to log in, and the console shows the platform's broker.
func TestLocalPlatformServesConsole(t *testing.T) {
	var banner bytes.Buffer
	var other string
	withPlatform(t, Options{Dir: t.TempDir(), Out: &banner}, func(ctx context.Context, p *Platform) {
		c := p.Console
		if c == nil || c.Password == "" || c.Username != ConsoleUser {
			t.Fatalf("console %+v", c)
		}
		for _, want := range []string{c.URL, "username  " + c.Username, "password  " + c.Password} {
			if !strings.Contains(banner.String(), want) {
				t.Errorf("banner lacks %q:\n%s", want, banner.String())
			}
		}
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar}
		resp, err := hc.Post(c.URL+"auth/login", "application/json", strings.NewReader(`{"username":"`+c.Username+`","password":"`+c.Password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("login with the printed credentials = %d", resp.StatusCode)
		}
		resp, err = hc.Get(c.URL + "api/overview")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ov struct {
			Brokers []struct {
				NodeID int32 `json:"nodeId"`
				Live   *bool `json:"live"`
			} `json:"brokers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&ov); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("overview = %d %v", resp.StatusCode, err)
		}
		if len(ov.Brokers) != 1 || ov.Brokers[0].NodeID != 0 || ov.Brokers[0].Live == nil || !*ov.Brokers[0].Live {
			t.Errorf("overview brokers %+v, want broker 0 live", ov.Brokers)
		}
		other = c.Password
	})
	// Each run generates its own password.
	withPlatform(t, Options{Dir: t.TempDir()}, func(_ context.Context, p *Platform) {
		if p.Console.Password == other {
			t.Error("two runs got the same console password")
		}
	})
}
