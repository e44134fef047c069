package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-v3.
//
// The key ranges come from the handlers' registrations, so the answer never claims more than
// this broker serves. v3 (KIP-511) adds the client's software name and version, which are
// accepted as they come (Kafka's strict name check would only break odd clients). A request newer than v3 is answered by the connection reader with
// a v0 UNSUPPORTED_VERSION response carrying the ranges, never by closing the connection.

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 3, (*Server).handleApiVersions) }

func (s *Server) handleApiVersions(_ context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return resp, nil
}

// unsupportedAPIVersions is the v0 answer to an ApiVersions request newer than we speak.
func unsupportedAPIVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, r := range supportedKeys() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = r.key, r.min, r.max
		keys = append(keys, k)
	}
	return keys
}
