package exampleutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:4437", want: "http://127.0.0.1:4437/v1/stream/"},
		{in: "http://127.0.0.1:4437/", want: "http://127.0.0.1:4437/v1/stream/"},
		{in: "https://ds.example.com/streams", want: "https://ds.example.com/streams/"},
		{in: "http://h/v1/stream/", want: "http://h/v1/stream/"},
		{in: "ftp://h/", wantErr: true},
		{in: "127.0.0.1:4437", wantErr: true},
		{in: "http://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := BaseURL(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
