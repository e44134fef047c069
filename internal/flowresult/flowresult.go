// Package flowresult is the report of the data-flow clients of the check binary
// (`kafscale-check produce-flow` / `consume-flow`, check/flow.go) and what reads it (the e2e
// tier, tests/e2e): one line "RESULT <json>" at the end of the client's output.
package flowresult

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Producer is what a producer reports: per partition, the sequence numbers of the records
// the cluster acknowledged, as ranges; every failure franz-go gave up on.
type Producer struct {
	ID     string             `json:"id"`
	Sent   int                `json:"sent"`
	Acked  map[int32][][2]int `json:"acked"`
	Failed []string           `json:"failed"`
	// Disorder: acknowledgements of one partition whose offsets did not increase.
	Disorder []string `json:"disorder"`
}

// Consumer is what the consumer reports: per partition and producer, the sequence numbers
// it read, as ranges; the violations it saw; the committed offsets and end offsets after it
// left the group.
type Consumer struct {
	Read        map[int32]map[string][][2]int `json:"read"`
	Records     int                           `json:"records"`
	Redelivered int                           `json:"redelivered"`
	Violations  []string                      `json:"violations"`
	Committed   map[int32]int64               `json:"committed"`
	End         map[int32]int64               `json:"end"`
}

const prefix = "RESULT "

// ErrNone is returned by Find for output without a result line.
var ErrNone = errors.New("no RESULT line")

// Write prints v as the result line.
func Write(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", prefix, b)
	return err
}

// Find decodes the first result line of output into v.
func Find(output string, v any) error {
	for _, line := range strings.Split(output, "\n") {
		if j, ok := strings.CutPrefix(line, prefix); ok {
			if err := json.Unmarshal([]byte(j), v); err != nil {
				return fmt.Errorf("RESULT line: %w", err)
			}
			return nil
		}
	}
	return ErrNone
}
