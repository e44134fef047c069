// Command check is the chart's `helm test` client: three small Kafka checks through one
// bootstrap address (the proxy's Service), each its own pod, in a FROM-scratch image with
// no shell. It exits 0 when the check passes and 1, saying what it saw, when it does not.
//
//	kafscale-check metadata -bootstrap host:port -advertised host:port
//	    every broker in the Metadata answer is the advertised endpoint (at least one)
//	kafscale-check produce -bootstrap host:port -topic T -value V
//	    produces one record with acks=all
//	kafscale-check consume -bootstrap host:port -topic T -value V
//	    reads the topic from its start offsets to the end offsets it had when the check
//	    began, and finds a record whose value is V
//
//	kafscale-check bucket -endpoint URL -bucket NAME [-region R]
//	    creates the bucket on an S3-compatible server (path style; credentials from
//	    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); one the caller owns already is fine:
//	    kind/up.sh makes the local cluster's bucket with it
//	kafscale-check volume -dir DIR
//	    writes, syncs, reads back and removes a file in DIR: that a volume is writable
//	    by the pod's user (kind/up.sh runs it as 65532 on a fresh claim)
//
//	kafscale-check produce-flow -bootstrap host:port -topic T -id ID -partitions N -rate R -stop-file F
//	kafscale-check consume-flow -bootstrap host:port -topic T -group G -stop-file F
//	    the e2e tier's clients that run through upgrades and account for every record
//	    (flow.go)
//
// -timeout bounds each check (default 60s; not the flow clients, which run until stopped).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: kafscale-check metadata|produce|consume -bootstrap host:port [flags], bucket -endpoint URL -bucket NAME, volume -dir DIR")
		return 2
	}
	fs := flag.NewFlagSet("kafscale-check "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	bootstrap := fs.String("bootstrap", "", "bootstrap address, host:port (required)")
	advertised := fs.String("advertised", "", "metadata: the one endpoint every broker must be")
	topic := fs.String("topic", "", "produce, consume: the topic")
	value := fs.String("value", "", "produce: the record's value; consume: the value to find")
	timeout := fs.Duration("timeout", 60*time.Second, "bound of the whole check")
	dir := fs.String("dir", "", "volume: the directory to write in")
	endpoint := fs.String("endpoint", "", "bucket: the S3 endpoint URL")
	bucketName := fs.String("bucket", "", "bucket: the bucket to create")
	region := fs.String("region", "us-east-1", "bucket: the region")
	id := fs.String("id", "", "produce-flow: the producer's name, the first word of its records")
	partitions := fs.Int("partitions", 3, "produce-flow: how many partitions to write round robin")
	rate := fs.Int("rate", 20, "produce-flow: records per second")
	stopFile := fs.String("stop-file", "", "produce-flow, consume-flow: stop when this file says stop")
	group := fs.String("group", "", "consume-flow: the consumer group")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if args[0] == "bucket" {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		if err := bucket(ctx, *endpoint, *region, *bucketName, stdout); err != nil {
			fmt.Fprintf(stderr, "kafscale-check bucket: %v\n", err)
			return 1
		}
		return 0
	}
	if args[0] == "volume" {
		if err := volume(*dir, stdout); err != nil {
			fmt.Fprintf(stderr, "kafscale-check volume: %v\n", err)
			return 1
		}
		return 0
	}
	if *bootstrap == "" {
		fmt.Fprintln(stderr, "kafscale-check: -bootstrap is required")
		return 2
	}
	if args[0] == "produce-flow" || args[0] == "consume-flow" {
		var err error
		if args[0] == "produce-flow" {
			err = flowProduce(*bootstrap, *topic, *id, *partitions, *rate, *stopFile, stdout)
		} else {
			err = flowConsume(*bootstrap, *topic, *group, *stopFile, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "kafscale-check %s: %v\n", args[0], err)
			return 1
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(*bootstrap), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ClientID("kafscale-check"))
	if err != nil {
		fmt.Fprintf(stderr, "kafscale-check: %v\n", err)
		return 2
	}
	defer cl.Close()

	switch args[0] {
	case "metadata":
		err = metadata(ctx, cl, *advertised, stdout)
	case "produce":
		err = produce(ctx, cl, *topic, *value, stdout)
	case "consume":
		err = consume(ctx, cl, *topic, *value, stdout)
	default:
		fmt.Fprintf(stderr, "kafscale-check: unknown check %q (metadata, produce, consume, bucket or volume)\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "kafscale-check %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// metadata passes when the Metadata answer lists at least one broker and each of them is
// the advertised endpoint: what a client outside the cluster needs from the proxy.
func metadata(ctx context.Context, cl *kgo.Client, advertised string, out io.Writer) error {
	if advertised == "" {
		return errors.New("-advertised is required")
	}
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata request: %w", err)
	}
	if len(m.Brokers) == 0 {
		return errors.New("the Metadata answer lists no broker")
	}
	bad := 0
	for _, b := range m.Brokers {
		at := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		fmt.Fprintf(out, "broker %d at %s\n", b.NodeID, at)
		if at != advertised {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d brokers are not the advertised endpoint %s", bad, len(m.Brokers), advertised)
	}
	return nil
}

func produce(ctx context.Context, cl *kgo.Client, topic, value string, out io.Writer) error {
	if topic == "" || value == "" {
		return errors.New("-topic and -value are required")
	}
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).First()
	if err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	fmt.Fprintf(out, "produced to %s/%d at offset %d\n", r.Topic, r.Partition, r.Offset)
	return nil
}

// consume reads every partition from its start to the end offset it had when the check
// began, so a missing record fails at once rather than at the timeout.
func consume(ctx context.Context, cl *kgo.Client, topic, value string, out io.Writer) error {
	if topic == "" || value == "" {
		return errors.New("-topic and -value are required")
	}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition → end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > start.Offset {
			from[o.Partition] = kgo.NewOffset().At(start.Offset)
			left[o.Partition] = o.Offset
		}
	})
	if len(left) == 0 {
		return fmt.Errorf("topic %s holds no records", topic)
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	want := []byte(value)
	read := 0
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d records of %s, none with the value, before the timeout", read, topic)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("fetch %s: %w", topic, ferr)
		}
		found := false
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			if bytes.Equal(r.Value, want) {
				found = true
				fmt.Fprintf(out, "found at %s/%d offset %d\n", r.Topic, r.Partition, r.Offset)
			}
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
		if found {
			return nil
		}
	}
	return fmt.Errorf("read %d records of %s to its end, none with the value %q", read, topic, value)
}

// volume writes a file in dir, syncs it, reads it back and removes it.
func volume(dir string, out io.Writer) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	f, err := os.CreateTemp(dir, "kafscale-check-*")
	if err != nil {
		return fmt.Errorf("uid %d cannot write in %s: %w", os.Getuid(), dir, err)
	}
	defer os.Remove(f.Name())
	want := []byte(fmt.Sprintf("written by uid %d at %s\n", os.Getuid(), time.Now().UTC().Format(time.RFC3339Nano)))
	if _, err := f.Write(want); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: read back %q, wrote %q", f.Name(), got, want)
	}
	fmt.Fprintf(out, "uid %d wrote, synced and read back %s\n", os.Getuid(), f.Name())
	return nil
}

// bucket creates name at endpoint, retrying until the server answers (it may be starting).
func bucket(ctx context.Context, endpoint, region, name string, out io.Writer) error {
	if endpoint == "" || name == "" {
		return errors.New("-endpoint and -bucket are required")
	}
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	cl := s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
	start, said := time.Now(), time.Now()
	for attempts := 1; ; attempts++ {
		// Each attempt bounded: a request to a Service whose routes are not yet programmed
		// can hang rather than fail.
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cl.CreateBucket(attempt, &s3.CreateBucketInput{Bucket: aws.String(name)})
		cancel()
		var owned *s3types.BucketAlreadyOwnedByYou
		if err == nil || errors.As(err, &owned) {
			fmt.Fprintf(out, "bucket %s at %s is there (attempt %d, after %s)\n", name, endpoint, attempts, time.Since(start).Round(time.Second))
			return nil
		}
		// A slow start should say what it waits for, not only that it took long.
		if time.Since(said) >= 10*time.Second {
			fmt.Fprintf(out, "still creating bucket %s at %s after %s (attempt %d): %v\n", name, endpoint, time.Since(start).Round(time.Second), attempts, err)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create bucket %s at %s: %w", name, endpoint, err)
		case <-time.After(time.Second):
		}
	}
}
