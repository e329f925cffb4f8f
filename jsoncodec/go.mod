module github.com/durablego/durable/jsoncodec

go 1.25

require (
	github.com/durablego/durable v0.0.0
	github.com/goccy/go-json v0.12.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/durablego/durable => ../
