// Package testenv starts the real processes that KafScale's integration tests run against —
// an etcd server, an S3-compatible server (versitygw) and a Kubernetes API server — on
// loopback and free ports, and tears them down when the test ends.
//
// The binaries come from ./bin, installed by `make tools` (override the directory with
// KAFSCALE_TEST_BIN). A missing binary fails the test and names `make tools`; nothing here
// ever skips.
package testenv
