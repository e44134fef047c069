package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	consoleapp "github.com/kafscale/kafscale/console/app"
	consoleconfig "github.com/kafscale/kafscale/console/config"
)

// ConsoleUser is the console login name of the local platform; the password is generated
// for each run and printed in the banner.
const ConsoleUser = "admin"

// Console is the operations console of a running local platform.
type Console struct {
	URL      string
	Username string
	Password string
}

// startConsole runs the console against the platform's etcd with a login generated for
// this run. It returns once the console serves, and a function that stops it.
func startConsole(ctx context.Context, opts Options, etcdEndpoint string) (*Console, func() error, error) {
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, err
	}
	password := base64.RawURLEncoding.EncodeToString(secret)
	env := map[string]string{
		"KAFSCALE_CONSOLE_HTTP_ADDR":      net.JoinHostPort(opts.Host, strconv.Itoa(opts.ConsolePort)),
		"KAFSCALE_CONSOLE_ETCD_ENDPOINTS": etcdEndpoint,
		"KAFSCALE_UI_USERNAME":            ConsoleUser,
		"KAFSCALE_UI_PASSWORD":            password,
	}
	for k, v := range opts.Env {
		if _, set := env[k]; !set && strings.HasPrefix(k, "KAFSCALE_CONSOLE_") {
			env[k] = v
		}
	}
	cfg, err := consoleconfig.Parse(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- consoleapp.Run(runCtx, cfg, consoleapp.Options{Logger: opts.Logger, OnReady: func(addr string) { ready <- addr }})
	}()
	stop := func() error {
		cancel()
		return <-done
	}
	select {
	case addr := <-ready:
		return &Console{URL: "http://" + addr + cfg.BasePath, Username: ConsoleUser, Password: password}, stop, nil
	case err := <-done:
		cancel()
		return nil, nil, fmt.Errorf("console: %w", err)
	case <-ctx.Done():
		return nil, nil, errors.Join(ctx.Err(), stop())
	}
}

func printConsoleBanner(w io.Writer, c *Console) {
	fmt.Fprintf(w, `Console (a login generated for this run):

  open      %s
  username  %s
  password  %s

`, c.URL, c.Username, c.Password)
}
