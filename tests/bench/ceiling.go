package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kafscale/kafscale/tests/testenv"
)

// Ceiling is what the hardware and the S3 server allow without a broker in the way.
type Ceiling struct {
	Name        string
	ObjectBytes int
	Parallelism int
	Ops         int
	Bytes       int64
	Elapsed     time.Duration
	Latencies   Percentiles // per request (S3 only)
	// Busy is the whole machine's busy CPU time during the run (/proc/stat): the S3
	// server's and the client's together, so a ceiling says what a byte costs the machine.
	Busy time.Duration
}

// CPUPerGiB is the machine's busy CPU-seconds per GiB moved in the run.
func (c Ceiling) CPUPerGiB() float64 {
	if c.Bytes <= 0 {
		return 0
	}
	return c.Busy.Seconds() / (float64(c.Bytes) / (1 << 30))
}

// Cores is the machine's cores in use during the run.
func (c Ceiling) Cores() float64 { return rate(c.Busy.Seconds(), c.Elapsed) }

// machineBusy returns the machine's busy CPU time so far, or 0 when /proc/stat is unreadable
// (the ceiling then reports no CPU figures rather than failing).
func machineBusy() time.Duration {
	b, _, err := machineCPU()
	if err != nil {
		return 0
	}
	return b
}

// BytesPerSec is the throughput of the run.
func (c Ceiling) BytesPerSec() float64 { return rate(float64(c.Bytes), c.Elapsed) }

// rawS3Client is a plain aws-sdk-go-v2 client set up as the broker sets up its own
// (broker/storage): static credentials, path style, checksums only where required.
func rawS3Client(s *testenv.S3) *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// s3PutCeiling PUTs objects of size bytes (incompressible) under prefix with parallel
// workers for d, each object a new key as the broker's flushes are. It returns the keys
// written, for the GET ceiling.
func s3PutCeiling(ctx context.Context, s *testenv.S3, prefix string, size, parallel int, d time.Duration, pool *Payload) (Ceiling, []string, error) {
	cli := rawS3Client(s)
	var (
		mu   sync.Mutex
		keys []string
	)
	c, err := timedOps(ctx, "S3 PUT", size, parallel, d, func(i int64, _ []byte) (int64, error) {
		key := prefix + strconv.FormatInt(i, 10)
		_, err := cli.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(pool.Slice(size)), ContentLength: aws.Int64(int64(size)),
			ContentType: aws.String("application/octet-stream"),
		})
		if err != nil {
			return 0, fmt.Errorf("put %s: %w", key, err)
		}
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		return int64(size), nil
	})
	return c, keys, err
}

// s3GetCeiling GETs the keys (whole objects) round robin with parallel workers for d.
func s3GetCeiling(ctx context.Context, s *testenv.S3, keys []string, size, parallel int, d time.Duration) (Ceiling, error) {
	if len(keys) == 0 {
		return Ceiling{}, fmt.Errorf("no objects to GET")
	}
	cli := rawS3Client(s)
	return timedOps(ctx, "S3 GET", size, parallel, d, func(i int64, buf []byte) (int64, error) {
		key := keys[int(i)%len(keys)]
		out, err := cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
		if err != nil {
			return 0, fmt.Errorf("get %s: %w", key, err)
		}
		defer out.Body.Close()
		// Read into memory as the broker does (into a []byte).
		n, err := bytes.NewBuffer(buf[:0]).ReadFrom(out.Body)
		if err != nil {
			return 0, fmt.Errorf("get %s: %w", key, err)
		}
		return n, nil
	})
}

// timedOps calls op from parallel workers until d has passed, the calls numbered from 1,
// each worker passing its own buffer of capacity size, and measures the bytes op reports
// and each call's latency. A worker stops at its first error; the first error is returned
// with what was measured.
func timedOps(ctx context.Context, name string, size, parallel int, d time.Duration, op func(i int64, buf []byte) (int64, error)) (Ceiling, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		total atomic.Int64
		seq   atomic.Int64
		first error
	)
	start, busy0 := time.Now(), machineBusy()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, size)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(seq.Add(1), buf)
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				lat = append(lat, took)
				mu.Unlock()
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	return Ceiling{Name: name, ObjectBytes: size, Parallelism: parallel, Ops: len(lat), Bytes: total.Load(),
		Elapsed: time.Since(start), Latencies: percentilesOf(lat), Busy: machineBusy() - busy0}, first
}

// tcpCeiling streams bytes over one loopback TCP connection for d: the most any Kafka
// client on this machine can push through a socket.
func tcpCeiling(ctx context.Context, d time.Duration) (Ceiling, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Ceiling{}, err
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return Ceiling{}, err
	}
	buf := make([]byte, 256<<10)
	start, busy0 := time.Now(), machineBusy()
	deadline := start.Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := conn.Write(buf); err != nil {
			conn.Close()
			return Ceiling{}, err
		}
	}
	conn.Close()
	n := <-received
	return Ceiling{Name: "TCP loopback", ObjectBytes: len(buf), Parallelism: 1, Bytes: n, Elapsed: time.Since(start),
		Busy: machineBusy() - busy0}, nil
}
