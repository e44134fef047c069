package server

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler answers one client request. A nil response with a nil error sends nothing (Produce
// with acks=0); an error closes the client's connection, as Kafka does for requests it cannot
// make sense of.
type handler func(c *conn, r *request) (*response, error)

type registration struct {
	key      int16
	min, max int16
	handle   handler
}

// handlers is filled by the init functions of the NN_name.go files: the proxy's own side of
// the ApiVersions intersection is exactly what is registered here.
var handlers = map[int16]registration{}

func register(key, min, max int16, h handler) {
	if _, dup := handlers[key]; dup {
		panic("proxy: api key registered twice: " + kmsg.NameForKey(key))
	}
	if max > kmsg.RequestForKey(key).MaxVersion() {
		panic("proxy: " + kmsg.NameForKey(key) + " registered beyond what kmsg can encode")
	}
	handlers[key] = registration{key: key, min: min, max: max, handle: h}
}

// supportedKeys returns the registrations ordered by key.
func supportedKeys() []registration {
	out := make([]registration, 0, len(handlers))
	for _, r := range handlers {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// ProxyRange is the version range the proxy itself handles for an API key (ok false: not
// handled). Tests compare the advertised ranges with it.
func ProxyRange(key int16) (min, max int16, ok bool) {
	r, ok := handlers[key]
	return r.min, r.max, ok
}
