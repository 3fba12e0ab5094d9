package writer_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/writer"
)

// Plus sums every field: a node's metrics add its earlier writers' totals, and a field Plus
// forgot read 0 on /metrics for ever (four rejection counters did, before this test).
func TestStatsPlusSumsEveryField(t *testing.T) {
	var a, b writer.Stats
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := 0; i < va.NumField(); i++ {
		va.Field(i).SetUint(uint64(i + 1))
		vb.Field(i).SetUint(uint64(100 * (i + 1)))
	}
	sum := reflect.ValueOf(a.Plus(b))
	for i := 0; i < sum.NumField(); i++ {
		assert.Equal(t, uint64(101*(i+1)), sum.Field(i).Uint(), sum.Type().Field(i).Name)
	}
}
