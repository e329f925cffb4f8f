package durable

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositionCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b Position
		want int
	}{
		{Position{Offset: "a"}, Position{Offset: "a"}, 0},
		{Position{Offset: "a", Meta: "x"}, Position{Offset: "a"}, 0},
		{Position{Offset: "a", Skip: 1}, Position{Offset: "a"}, 1},
		{Position{Offset: "a", Skip: 5}, Position{Offset: "b"}, -1},
		{Position{Offset: "-1", Skip: 9}, Position{Offset: "!"}, -1},
		{Position{Offset: "0_1"}, Position{Offset: "-1"}, 1},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			require.Equal(t, tt.want, tt.a.Compare(tt.b))
			require.Equal(t, -tt.want, tt.b.Compare(tt.a))
		})
	}
}
