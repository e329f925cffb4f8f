package durable

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type ptrMarshal struct{ V int }

func (p *ptrMarshal) MarshalJSON() ([]byte, error) { return []byte(`"pointer"`), nil }

type valMarshal struct{ V int }

func (v valMarshal) MarshalJSON() ([]byte, error) { return []byte(`"value"`), nil }

type ptrText struct{ V int }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte("pointer-text"), nil }

type (
	withPtrField   struct{ A ptrMarshal }
	withPtrArray   struct{ A [2]ptrMarshal }
	withPtrPointer struct{ A *ptrMarshal }
	withPtrSlice   struct{ A []ptrMarshal }
	withValField   struct{ A valMarshal }
	withTextField  struct{ A ptrText }
	plainStruct    struct {
		ID   int
		Name string
		Tags []string
		M    map[string]ptrMarshal
	}
)

// TestByPointerSame: the pointer shortcut is taken only where encoding/json
// gives the same bytes for the value and for a pointer to it.
func TestByPointerSame(t *testing.T) {
	t.Parallel()
	check := func(name string, same bool, byPtr func() bool, v any, p any) {
		t.Helper()
		require.Equal(t, same, byPtr(), name)
		a, err := json.Marshal(v)
		require.NoError(t, err)
		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.Equal(t, same, string(a) == string(b), "%s: by value %s, by pointer %s", name, a, b)
	}
	check("plain struct", true, byPointerSame[plainStruct], plainStruct{ID: 1, M: map[string]ptrMarshal{"k": {}}}, &plainStruct{ID: 1, M: map[string]ptrMarshal{"k": {}}})
	check("pointer-receiver MarshalJSON", false, byPointerSame[ptrMarshal], ptrMarshal{}, &ptrMarshal{})
	check("value-receiver MarshalJSON", true, byPointerSame[valMarshal], valMarshal{}, &valMarshal{})
	check("field with pointer-receiver MarshalJSON", false, byPointerSame[withPtrField], withPtrField{}, &withPtrField{})
	check("array of it", false, byPointerSame[withPtrArray], withPtrArray{}, &withPtrArray{})
	check("pointer to it", true, byPointerSame[withPtrPointer], withPtrPointer{A: &ptrMarshal{}}, &withPtrPointer{A: &ptrMarshal{}})
	check("slice of it", true, byPointerSame[withPtrSlice], withPtrSlice{A: []ptrMarshal{{}}}, &withPtrSlice{A: []ptrMarshal{{}}})
	check("field with value-receiver MarshalJSON", true, byPointerSame[withValField], withValField{}, &withValField{})
	check("field with pointer-receiver MarshalText", false, byPointerSame[withTextField], withTextField{}, &withTextField{})
	var x any = withPtrField{}
	check("interface", true, byPointerSame[any], x, &x)
}

// TestWriterEncodesLikeMarshal: whichever way the Writer encodes, each
// message is what json.Marshal makes of the value written, and a plain
// struct costs no allocation per message.
func TestWriterEncodesLikeMarshal(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	ctx := ctxT(t, 10*time.Second)
	wp := newTestWriter[withPtrField](t, e)
	wv := newTestWriter[withValField](t, e)
	ws := newTestWriter[plainStruct](t, e)
	require.Equal(t, fastJSON, wp.fast)
	require.Equal(t, fastJSONPtr, wv.fast)
	require.Equal(t, fastJSONPtr, ws.fast)
	require.NoError(t, wp.Write(ctx, withPtrField{}))
	require.NoError(t, wp.Close(ctx))
	require.NoError(t, wv.Write(ctx, withValField{}))
	require.NoError(t, wv.Close(ctx))
	require.NoError(t, ws.Write(ctx, plainStruct{ID: 7, Name: "<n>", Tags: []string{"a"}}))
	require.NoError(t, ws.Close(ctx))
	msgs, _ := e.readJSON(t)
	want := []any{withPtrField{}, withValField{}, plainStruct{ID: 7, Name: "<n>", Tags: []string{"a"}}}
	require.Len(t, msgs, len(want))
	for i, v := range want {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.Equal(t, string(b), string(msgs[i]))
	}
}

// TestWriterPlainStructNoAllocs: writing a plain struct with the default
// JSON codec allocates nothing per message (the value is encoded through a
// pooled pointer, not boxed). Not parallel: AllocsPerRun needs the process
// to itself; skipped under -race, whose sync.Pool drops items on purpose.
func TestWriterPlainStructNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	e := newWEnv(t, "application/json")
	w := newTestWriter[plainStruct](t, e, WithLinger(time.Hour), WithMaxBatch(100000, 1<<20), WithBuffer(100000, 8<<20))
	v := plainStruct{ID: 1, Name: "n"}
	allocs := testing.AllocsPerRun(2000, func() {
		if err := w.Write(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	})
	require.Less(t, allocs, 0.1, "allocations per Write of a plain struct")
}
