package bench

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Payload hands out incompressible byte slices: windows at random offsets of a buffer of
// crypto-random bytes far larger than any compressor's window, so neither a record nor a
// batch nor an object compresses.
type Payload struct {
	buf []byte
	mu  sync.Mutex
	rng *mrand.Rand
}

// NewPayload fills a pool of size bytes from crypto/rand.
func NewPayload(size int) *Payload {
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	var seed [32]byte
	copy(seed[:], b)
	return &Payload{buf: b, rng: mrand.New(mrand.NewChaCha8(seed))}
}

// Slice returns n random bytes (a view of the pool: callers must not write to it).
func (p *Payload) Slice(n int) []byte {
	if n > len(p.buf) {
		panic(fmt.Sprintf("payload of %d bytes asked from a pool of %d", n, len(p.buf)))
	}
	p.mu.Lock()
	off := p.rng.IntN(len(p.buf) - n + 1)
	p.mu.Unlock()
	return p.buf[off : off+n]
}

// Percentiles of a latency sample.
type Percentiles struct {
	N                   int
	P50, P99, P999, Max time.Duration
	Mean                time.Duration
}

// percentilesOf sorts the sample (in place) and reads the nearest-rank percentiles.
func percentilesOf(s []time.Duration) Percentiles {
	if len(s) == 0 {
		return Percentiles{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Percentiles{N: len(s), P50: rank(0.50), P99: rank(0.99), P999: rank(0.999), Max: s[len(s)-1],
		Mean: sum / time.Duration(len(s))}
}

func rate(amount float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return amount / d.Seconds()
}

// ProcSample is what /proc says about a process at one moment.
type ProcSample struct {
	CPU     time.Duration // utime + stime
	RSS     int64         // VmRSS, bytes
	PeakRSS int64         // VmHWM, bytes: the high-water mark since the process started
}

// readProc reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status (VmRSS, VmHWM).
func readProc(pid int) (ProcSample, error) {
	var s ProcSample
	if pid <= 0 {
		return s, fmt.Errorf("no process")
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are
	// fixed: state is field 3, utime 14 and stime 15.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux architecture Go supports.
	s.CPU = time.Duration(utime+stime) * (time.Second / 100)
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := sc.Text()
		kb := func() int64 {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v << 10
		}
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			s.RSS = kb()
		case strings.HasPrefix(line, "VmHWM:"):
			s.PeakRSS = kb()
		}
	}
	return s, sc.Err()
}

// resetPeakRSS returns a process's VmHWM and then resets it to its current RSS (writing 5 to
// /proc/<pid>/clear_refs, Linux 4.0+), so the next VmHWM is the peak since now. When the
// reset is refused, VmHWM keeps counting from the process's start; the peaks reported stay
// true, only less precise.
func resetPeakRSS(pid int) int64 {
	s, err := readProc(pid)
	if err != nil {
		return 0
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	return s.PeakRSS
}

// machineCPU is the CPU time the whole machine spent busy (every state but idle and iowait)
// and in total, summed over cores, from the first line of /proc/stat.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var all, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		all += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	tick := time.Second / 100
	return time.Duration(all-idle) * tick, time.Duration(all) * tick, nil
}
