package durable

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/require"
)

const mockBase = "http://mock.test/v1/stream/"

// mockClient returns a Client whose HTTP goes to an httpmock transport.
func mockClient(t *testing.T, opts ...Option) (*Client, *httpmock.MockTransport) {
	t.Helper()
	mt := httpmock.NewMockTransport()
	all := withDefaults([]Option{WithHTTPClient(&http.Client{Transport: mt}), WithRetry(fastRetry())}, opts...)
	c, err := NewClient(mockBase, all...)
	require.NoError(t, err)
	return c, mt
}

// reply builds a responder with a status, headers and a body.
func reply(status int, hdr map[string]string, body string) httpmock.Responder {
	return func(req *http.Request) (*http.Response, error) {
		return mkResp(req, status, hdr, io.NopCloser(strings.NewReader(body)), int64(len(body))), nil
	}
}

func mkResp(req *http.Request, status int, hdr map[string]string, body io.ReadCloser, n int64) *http.Response {
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	return &http.Response{
		Status:        http.StatusText(status),
		StatusCode:    status,
		Header:        h,
		Body:          body,
		ContentLength: n,
		Request:       req,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
	}
}
