package testserver_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/durablego/durable/testserver"
)

// A test starts a server, creates a JSON stream, appends a batch and reads
// it back; the array is flattened into one message per element.
func ExampleNew() {
	srv := testserver.New()
	defer srv.Close()
	url := srv.StreamURL("orders")

	do := func(method, body string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		return res
	}
	do("PUT", "").Body.Close()
	res := do("POST", `[{"id":1},{"id":2}]`)
	res.Body.Close()
	fmt.Println("append:", res.StatusCode, res.Header.Get("Stream-Next-Offset"))

	res, _ = http.Get(url + "?offset=-1")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println("read:", string(body), res.Header.Get("Stream-Up-To-Date"))
	fmt.Println("POSTs seen:", srv.Requests("orders", "POST"))
	// Output:
	// append: 204 0000000000000000_0000000000000018
	// read: [{"id":1},{"id":2}] true
	// POSTs seen: 1
}

// Fault injection: the next append fails with 503 and Retry-After.
func ExampleServer_InjectFault() {
	srv := testserver.New()
	defer srv.Close()
	srv.InjectFault(testserver.Fault{Path: "jobs", Method: "POST", Status: 503, RetryAfter: 2e9, Count: 1})

	req, _ := http.NewRequest("POST", srv.StreamURL("jobs"), strings.NewReader("x"))
	req.Header.Set("Content-Type", "text/plain")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Retry-After"))
	// Output: 503 2
}
