module github.com/durablego/durable

go 1.25

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/jarcoal/httpmock v1.4.2
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
