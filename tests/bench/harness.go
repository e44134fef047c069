// Package bench is the measurement harness behind `make bench` (docs/benchmarks.md): it
// starts a real etcd and a real S3 server (versitygw), measures the ceilings (raw S3 PUT and
// GET, loopback TCP), runs the broker binary as a process of its own under a franz-go load
// generator, runs the same workloads against franz-go's kfake as a protocol-overhead peer,
// and reports absolute figures, ratios and the targets of issue #7.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// BrokerSettings are the broker's effective settings that the ceilings and targets depend on.
type BrokerSettings struct {
	SegmentBytes      int
	FlushInterval     time.Duration
	CacheBytes        int64
	ReadaheadSegments int
	PutParallelism    int
	GetParallelism    int
}

// BrokerPutParallelism is how many S3 PUTs the broker has in flight at once: its pipelined
// flushes, up to KAFSCALE_FLUSH_PARALLELISM (BENCH_PUT_PARALLELISM overrides it).
func BrokerPutParallelism(cfg *config.Broker) int { return cfg.Storage.FlushParallelism }

// BrokerGetParallelism is how many S3 GETs one catching-up partition can have in flight: the
// fetch's own ranged GET plus KAFSCALE_READAHEAD_SEGMENTS readahead GETs (at most 4 of those
// run at once, broker/partition).
func BrokerGetParallelism(cfg *config.Broker) int { return 1 + min(cfg.Storage.ReadaheadSegments, 4) }

// Run performs a whole benchmark and returns its report. Progress goes to tb.Logf.
func Run(ctx context.Context, tb testing.TB, cfg Config) (*Report, error) {
	rep := &Report{Config: cfg, Started: time.Now().UTC(), Machine: describeMachine()}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	outDir, err := filepath.Abs(cfg.OutDir)
	if err != nil {
		return nil, err
	}

	// --- the broker's settings, as the broker itself parses them ---------------------------
	brokerEnv := append([]string{
		"KAFSCALE_FLUSH_INTERVAL_MS=500", // brokertest's default is 50 ms; the product's is 500
		"KAFSCALE_LOG_LEVEL=info",
		"KAFSCALE_BROKER_LEASE_TTL_SEC=10",
		"KAFSCALE_PPROF=true",
	}, cfg.BrokerEnv...)
	bc, err := config.Parse(func(name string) (string, bool) {
		for i := len(brokerEnv) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(brokerEnv[i], "="); k == name {
				return v, true
			}
		}
		if name == "KAFSCALE_S3_BUCKET" {
			return "bench", true
		}
		return "", false
	})
	if err != nil {
		return nil, fmt.Errorf("broker settings: %w", err)
	}
	bs := BrokerSettings{
		SegmentBytes: bc.Storage.SegmentBytes, FlushInterval: bc.Storage.FlushInterval,
		CacheBytes: bc.Storage.CacheBytes, ReadaheadSegments: bc.Storage.ReadaheadSegments,
		PutParallelism: BrokerPutParallelism(bc), GetParallelism: BrokerGetParallelism(bc),
	}
	if cfg.PutParallelism > 0 {
		bs.PutParallelism = cfg.PutParallelism
	}
	if cfg.GetParallelism > 0 {
		bs.GetParallelism = cfg.GetParallelism
	}
	rep.Broker = bs
	rep.BrokerEnv = brokerEnv

	tb.Logf("bench: starting etcd and versitygw")
	etcd := testenv.StartEtcd(tb)
	s3srv := testenv.StartS3(tb)
	pool := NewPayload(64 << 20)

	// --- (a) ceilings ----------------------------------------------------------------------
	tb.Logf("bench: ceilings: loopback TCP, S3 PUT and GET of %d-byte objects", bs.SegmentBytes)
	if rep.TCP, err = tcpCeiling(ctx, cfg.Duration); err != nil {
		return rep, fmt.Errorf("tcp ceiling: %w", err)
	}
	var keys []string
	settle(tb)
	if rep.Put, keys, err = s3PutCeiling(ctx, s3srv, "bench-ceiling/", bs.SegmentBytes, bs.PutParallelism, cfg.Duration, pool); err != nil {
		return rep, fmt.Errorf("s3 put ceiling: %w", err)
	}
	settle(tb)
	if rep.Get, err = s3GetCeiling(ctx, s3srv, keys, bs.SegmentBytes, bs.GetParallelism, cfg.Duration); err != nil {
		return rep, fmt.Errorf("s3 get ceiling: %w", err)
	}
	tb.Logf("bench: PUT %.1f MB/s (p99 %s), GET %.1f MB/s, TCP %.1f MB/s",
		rep.Put.BytesPerSec()/1e6, rep.Put.Latencies.P99, rep.Get.BytesPerSec()/1e6, rep.TCP.BytesPerSec()/1e6)

	// --- (b) the broker --------------------------------------------------------------------
	binary := brokertest.Binary(tb)
	broker := brokertest.Start(tb, brokertest.Options{NodeID: 0, Etcd: etcd, S3: s3srv, Env: brokerEnv})
	s3cli := rawS3Client(s3srv)
	sys := System{
		Name: "broker", Addr: broker.Addr, PID: broker.PID,
		MetricsURL: "http://" + broker.MetricsAddr + "/metrics",
		CountObjects: func(ctx context.Context) (int, error) {
			return countObjects(ctx, s3cli, s3srv.Bucket, bc.S3.Namespace+"/segments/")
		},
	}
	var (
		profiles  sync.WaitGroup
		profileMu sync.Mutex
	)
	// profileAt collects a profile from the HTTP listener at addr (the broker's or the
	// proxy's) into outDir/name and quotes its top functions in the report.
	profileAt := func(addr, binary, name, path string) {
		if !cfg.Profile {
			return
		}
		profiles.Add(1)
		go func() {
			defer profiles.Done()
			file := filepath.Join(outDir, name)
			if err := fetchProfile(ctx, "http://"+addr+path, file); err != nil {
				tb.Logf("bench: profile %s: %v", name, err)
				return
			}
			top, cum := pprofTop(ctx, binary, file)
			profileMu.Lock()
			rep.Profiles = append(rep.Profiles, Profile{Name: name, Path: file, Top: top, Cum: cum})
			profileMu.Unlock()
		}()
	}
	profile := func(name, path string) { profileAt(broker.MetricsAddr, binary, name, path) }
	// Per produce run: a CPU profile over most of its warm-up and measured window (one CPU
	// profile at a time: each run waits for the previous one's), and a heap profile in the
	// middle of its window (the memory in use under load).
	runSecs := strconv.Itoa(max(int((cfg.Warmup+cfg.Duration).Seconds())-1, 1))
	brokerRuns, err := produceMatrix(ctx, tb, sys, cfg, pool, func(name string) {
		profiles.Wait()
		profile("broker-produce-"+name+"-cpu.pprof", "/debug/pprof/profile?seconds="+runSecs)
		profiles.Add(1)
		time.AfterFunc(cfg.Warmup+cfg.Duration/2, func() {
			defer profiles.Done()
			profile("broker-produce-"+name+"-heap.pprof", "/debug/pprof/heap")
		})
	})
	rep.BrokerProduce = brokerRuns
	if err != nil {
		return rep, err
	}
	profiles.Wait()
	profile("broker-heap.pprof", "/debug/pprof/heap")
	profiles.Wait()
	peak := rep.peakRate()
	tb.Logf("bench: broker: fixed rate %.0f records/s (half of the 1 KiB, 1 partition peak) for %s", peak/2, cfg.LatencyDuration)
	settle(tb)
	if rep.BrokerLatency, err = fixedRate(ctx, sys, "bench-latency", 1024, cfg.Producers, peak/2, cfg.LatencyDuration, pool); err != nil {
		return rep, err
	}
	tb.Logf("bench: broker: steady %.0f B/s for %s", cfg.SteadyBytesPerSec, cfg.LatencyDuration)
	settle(tb)
	if rep.BrokerSteady, err = fixedRate(ctx, sys, "bench-steady", 1024, 1, cfg.SteadyBytesPerSec/1024, cfg.LatencyDuration, pool); err != nil {
		return rep, err
	}
	tb.Logf("bench: broker: one 1 KiB request at a time for %s", cfg.SequentialDuration)
	settle(tb)
	if rep.BrokerSequential, err = sequentialProduce(ctx, sys, "bench-sequential", 1024, cfg.SequentialDuration, pool); err != nil {
		return rep, err
	}
	tb.Logf("bench: broker: producing a %d-byte backlog", cfg.BacklogBytes)
	settle(tb)
	if rep.BrokerBacklog, err = produceThroughput(ctx, sys, "bench-backlog", cfg.BacklogRecordBytes, 1, cfg.Producers, 0, 0, cfg.BacklogBytes, pool); err != nil {
		return rep, err
	}
	// Objects against flushes, for the life of this broker process (the probe object of
	// the startup check is deleted and so not counted by either).
	before, err := sys.snapshot(ctx)
	if err != nil {
		return rep, err
	}
	rep.ObjectsListed = before.Objects
	rep.FlushesCounted = before.Metrics["kafscale_flushes_total"]
	rep.PutsCounted = before.Metrics["kafscale_s3_puts_total"] - 1 // the startup probe
	// The produce runs reset the peak at their start: the phase's peak is the largest of
	// theirs, of what came before each, and of what followed the last.
	producePeak := before.Proc.PeakRSS
	for _, r := range append(rep.BrokerProduce, rep.BrokerBacklog) {
		producePeak = max(producePeak, r.PriorPeakRSS, r.Delta.PeakRSS)
	}
	rep.BrokerPeakRSS = producePeak
	rep.BrokerPeakRSSPhases[0] = producePeak

	// Restart: the catch-up reads from S3, not from the cache the flushes filled.
	tb.Logf("bench: restarting the broker, then reading the backlog from S3")
	broker.Stop()
	settle(tb)
	broker.Start()
	// A CPU profile cannot be cut short: make it about as long as producing the backlog took
	// (reading it back is rarely slower); idle time adds no samples.
	readSecs := int(rep.BrokerBacklog.Delta.Elapsed.Seconds()) + 1
	profile("broker-catchup-cpu.pprof", "/debug/pprof/profile?seconds="+strconv.Itoa(min(max(readSecs, 2), 60)))
	if rep.BrokerFetchCatchUp, err = fetchCatchUp(ctx, sys, "bench-backlog", rep.BrokerBacklog.Records); err != nil {
		return rep, err
	}
	profiles.Wait()
	if p, err := readProc(broker.PID()); err == nil {
		rep.BrokerPeakRSS = max(rep.BrokerPeakRSS, p.PeakRSS)
		rep.BrokerPeakRSSPhases[1] = p.PeakRSS
	}
	// Once more with a franz-go consumer, which decodes every record, from an empty cache.
	broker.Stop()
	settle(tb)
	broker.Start()
	if rep.BrokerCatchUp, err = catchUp(ctx, sys, "bench-backlog", rep.BrokerBacklog.Records); err != nil {
		return rep, err
	}
	if p, err := readProc(broker.PID()); err == nil {
		rep.BrokerPeakRSS = max(rep.BrokerPeakRSS, p.PeakRSS)
		rep.BrokerPeakRSSPhases[2] = p.PeakRSS
	}

	// --- (b2) the same broker through one proxy ------------------------------------------
	if cfg.Proxy {
		proxyProfile := func(addr, name string, secs int) {
			profiles.Wait() // one CPU profile at a time
			profileAt(addr, proxytest.Binary(tb), name, "/debug/pprof/profile?seconds="+strconv.Itoa(min(max(secs, 2), 60)))
		}
		err := runProxy(ctx, tb, rep, etcd, broker, sys, cfg, pool, proxyProfile, profiles.Wait)
		if err != nil {
			return rep, err
		}
	}
	broker.Stop()
	if log, err := os.ReadFile(broker.LogPath()); err == nil {
		_ = os.WriteFile(filepath.Join(outDir, "broker.log"), log, 0o644)
	}

	// --- (c) the kfake peer ----------------------------------------------------------------
	if cfg.Peer {
		peer, err := startPeer(tb, outDir, cfg.BacklogBytes)
		if err != nil {
			return rep, err
		}
		psys := System{Name: "kfake", Addr: peer.addr, PID: func() int { return peer.cmd.Process.Pid }, InMemory: true}
		rep.PeerProduce, err = produceMatrix(ctx, tb, psys, cfg, pool, nil)
		if err != nil {
			return rep, err
		}
		tb.Logf("bench: kfake: fixed rate %.0f records/s", peak/2)
		settle(tb)
		if rep.PeerLatency, err = fixedRate(ctx, psys, "bench-latency", 1024, cfg.Producers, peak/2, cfg.LatencyDuration, pool); err != nil {
			return rep, err
		}
		settle(tb)
		if rep.PeerSequential, err = sequentialProduce(ctx, psys, "bench-sequential", 1024, cfg.SequentialDuration, pool); err != nil {
			return rep, err
		}
		settle(tb)
		if rep.PeerBacklog, err = produceThroughput(ctx, psys, "bench-backlog", cfg.BacklogRecordBytes, 1, cfg.Producers, 0, 0, cfg.BacklogBytes, pool); err != nil {
			return rep, err
		}
		if rep.PeerFetchCatchUp, err = fetchCatchUp(ctx, psys, "bench-backlog", rep.PeerBacklog.Records); err != nil {
			return rep, err
		}
		if rep.PeerCatchUp, err = catchUp(ctx, psys, "bench-backlog", rep.PeerBacklog.Records); err != nil {
			return rep, err
		}
		if p, err := readProc(psys.PID()); err == nil {
			rep.PeerPeakRSS = p.PeakRSS
		}
		peer.stop()
	}
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadEnd = loadavg()
	return rep, nil
}

// runProxy repeats the 1 KiB produce runs (1 and 64 partitions, Config.Producers clients)
// with the clients going through one proxy in front of the broker, and reads the backlog
// (after a broker restart: from S3) with a consumer going direct and through the proxy in
// turn (Report.ProxyRounds), measuring the proxy's CPU too.
func runProxy(ctx context.Context, tb testing.TB, rep *Report, etcd *testenv.Etcd, broker *brokertest.Broker, sys System, cfg Config, pool *Payload,
	profile func(addr, name string, secs int), profiled func()) error {
	px := proxytest.Start(tb, proxytest.Options{Etcd: etcd, Env: []string{"KAFSCALE_PROXY_LOG_LEVEL=info", "KAFSCALE_PROXY_PPROF=" + strconv.FormatBool(cfg.Profile)}})
	psys := sys
	psys.Name, psys.Addr, psys.ProxyPID = "proxy", px.Addr, px.PID
	for _, parts := range []int{1, 64} {
		name := fmt.Sprintf("1k-%dp-%dc", parts, cfg.Producers)
		settle(tb)
		profile(px.MetricsAddr, "proxy-produce-"+name+"-cpu.pprof", int((cfg.Warmup+cfg.Duration).Seconds())-1)
		r, err := produceThroughput(ctx, psys, "bench-proxy-produce-"+name, 1<<10, parts, cfg.Producers, cfg.Warmup, cfg.Duration, 0, pool)
		if err != nil {
			return err
		}
		tb.Logf("bench: through the proxy: produce 1 KiB records, %d partitions, %d producers: %.1f MB/s, proxy CPU %s, broker CPU %s",
			parts, cfg.Producers, r.BytesPerSec()/1e6, r.Delta.ProxyCPU, r.Delta.CPU)
		rep.ProxyProduce = append(rep.ProxyProduce, r)
	}
	// The catch-up: direct, proxy, proxy, direct, each from a restarted broker (from S3).
	profiledOnce := false
	for _, through := range []bool{false, true, true, false} {
		s := sys
		if through {
			s = psys
		}
		tb.Logf("bench: restarting the broker, then reading the backlog from S3 (%s)", s.Name)
		broker.Stop()
		settle(tb)
		broker.Start()
		px.WaitReady()
		if through && !profiledOnce {
			// About as long as the direct catch-up took; idle time adds no samples.
			profile(px.MetricsAddr, "proxy-catchup-cpu.pprof", int(rep.BrokerCatchUp.Delta.Elapsed.Seconds())+1)
			profiledOnce = true
		}
		c, err := catchUp(ctx, s, "bench-backlog", rep.BrokerBacklog.Records)
		if err != nil {
			return err
		}
		tb.Logf("bench: catch-up (%s): %.1f MB/s", s.Name, c.BytesPerSec()/1e6)
		rep.ProxyRounds = append(rep.ProxyRounds, c)
	}
	if p, err := readProc(px.PID()); err == nil {
		rep.ProxyPeakRSS = p.PeakRSS
	}
	profiled() // the proxy serves its profile until the end of the window
	px.Kill()
	return nil
}

// produceMatrix runs the four produce workloads with cfg.Producers clients: 1 KiB and
// 16 KiB records, 1 and 64 partitions; then, when cfg.Producers > 1, 1 KiB records on one
// partition from a single client (a fifth result), which shows what one client's window
// allows. Before each run it calls starting (when not nil) with the run's name, such as
// 1k-64p-4c.
func produceMatrix(ctx context.Context, tb testing.TB, sys System, cfg Config, pool *Payload, starting func(name string)) ([]ProduceResult, error) {
	type run struct{ size, parts, producers int }
	var runs []run
	for _, size := range []int{1 << 10, 16 << 10} {
		for _, parts := range []int{1, 64} {
			runs = append(runs, run{size, parts, cfg.Producers})
		}
	}
	if cfg.Producers > 1 {
		runs = append(runs, run{1 << 10, 1, 1})
	}
	var out []ProduceResult
	for _, x := range runs {
		name := fmt.Sprintf("%dk-%dp-%dc", x.size>>10, x.parts, x.producers)
		settle(tb)
		if starting != nil {
			starting(name)
		}
		r, err := produceThroughput(ctx, sys, "bench-produce-"+name, x.size, x.parts, x.producers, cfg.Warmup, cfg.Duration, 0, pool)
		if err != nil {
			return out, err
		}
		tb.Logf("bench: %s: produce %d B records, %d partitions, %d producers: %.1f MB/s, %.0f records/s, %d S3 PUTs, CPU %s",
			sys.Name, x.size, x.parts, x.producers, r.BytesPerSec()/1e6, r.RecordsPerSec(), int(r.Delta.Puts), r.Delta.CPU)
		out = append(out, r)
	}
	return out, nil
}

// settle writes the page cache's dirty data back before a measurement, so the writeback of
// what the previous run wrote to versitygw's files does not land in the next one: the kernel
// writes dirty pages back up to 30 s after they were written (vm.dirty_expire_centisecs),
// and a produce run writes 2-4 GB in under 20 s.
func settle(tb testing.TB) {
	start := time.Now()
	syscall.Sync()
	if d := time.Since(start); d >= time.Second {
		tb.Logf("bench: wrote dirty pages back for %s before the next run", d.Round(100*time.Millisecond))
	}
}

func countObjects(ctx context.Context, cli *s3.Client, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(cli, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		n += len(page.Contents)
	}
	return n, nil
}

func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cumShow picks the nodes of the cumulative view: the broker's own functions and the
// library leaves that dominate its profiles (hashing, copying into growing buffers, reading
// bodies, syscalls); the AWS SDK's thirty nested middleware frames are left out.
const cumShow = `github\.com/kafscale/kafscale/|sha256\.block$|crc32\.update$|io\.ReadAll|bytes\.\(\*Buffer\)\.grow|slices\.Grow|syscall\.Syscall$|gcBgMarkWorker`

// pprofTop is `go tool pprof -top` of a profile: the functions that take the most
// themselves (flat), then, with their callees (cum), the broker's functions and the leaves
// of cumShow.
func pprofTop(ctx context.Context, binary, file string) (flat, cum string) {
	var outs [2]string
	for i, sortBy := range [][]string{{"-top"}, {"-top", "-cum", "-show=" + cumShow}} {
		args := append(append([]string{"tool", "pprof"}, sortBy...), "-nodecount=30", binary, file)
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			out = fmt.Appendf(nil, "go tool pprof: %v\n%s", err, out)
		}
		outs[i] = string(out)
	}
	return outs[0], outs[1]
}

// peer is the kfake process.
type peer struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func (p *peer) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// startPeer builds tests/bench/cmd/kfakepeer and runs it on a free port, in its own process
// group, killed with the harness. liveBytes is the most it must hold at once.
func startPeer(tb testing.TB, outDir string, liveBytes int64) (*peer, error) {
	bin := filepath.Join(tb.TempDir(), "kfakepeer")
	if err := testenv.Build("./tests/bench/cmd/kfakepeer", bin); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(tb)))
	logFile, err := os.Create(filepath.Join(outDir, "kfakepeer.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-addr", addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// kfake keeps every record in memory and allocates at hundreds of MB/s; a soft limit
	// above what it must hold (the backlog) keeps its garbage from filling the machine.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%dMiB", (liveBytes>>20)+1024))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &peer{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	tb.Cleanup(p.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("kfakepeer exited at startup; see %s", logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kfakepeer not listening on %s after 30s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
