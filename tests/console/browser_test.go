package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium with a fresh profile, one tab, and a record of every
// message the page wrote to its console and every dialog it opened.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	dialogs  []string
}

// chromiumPath is Debian's chromium, which `make tools` installs.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is missing: run `make tools` (it installs the Debian chromium package)")
	}
	return path
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		// The closed network of CI: no background fetches, updates or sync.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, shots: artifacts(t)}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// run runs actions with a one-minute bound.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(url string) { b.t.Helper(); b.run("open "+url, chromedp.Navigate(url)) }

// eval evaluates a JavaScript expression into v (JSON-decoded).
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		b.t.Fatalf("evaluate %s: %s: %v", expr, raw, err)
	}
}

func (b *browser) str(expr string) string {
	b.t.Helper()
	var s string
	b.eval(`String(`+expr+`)`, &s)
	return s
}

// waitFor evaluates cond (a JavaScript boolean expression) until it holds, and fails the
// test, with the last value of show, when it does not within d.
func (b *browser) waitFor(what string, d time.Duration, cond, show string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		b.eval(`(() => { try { return !!(`+cond+`); } catch (e) { return false; } })()`, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("gave up waiting for %s; the page shows %s", what, b.str(`(() => { try { return JSON.stringify(`+show+`); } catch (e) { return String(e); } })()`))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// colorScheme emulates the browser's prefers-color-scheme (light or dark).
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
	if err != nil {
		b.t.Fatalf("emulate prefers-color-scheme %s: %v", scheme, err)
	}
}

// screenshot saves the whole page as <n>-<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.n++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// problems returns the page's errors so far: uncaught exceptions, console.error calls,
// browser log errors (a refused resource, a CSP violation) and dialogs. allowed reports a
// message expected at this point of the tour.
func (b *browser) problems(allowed func(chromedp.ConsoleMessage) bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		if allowed != nil && allowed(m) {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s, source %q)", m.String(), m.URL, m.Source))
	}
	for _, d := range b.dialogs {
		out = append(out, "dialog opened: "+d)
	}
	return out
}
