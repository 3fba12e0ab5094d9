//go:build linux

package bench

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statCPU reads utime + stime (fields 14 and 15) after the command name's last ')', whatever
// the name holds, and refuses a line it cannot read.
func TestStatCPU(t *testing.T) {
	rest := " S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1"
	for _, tc := range []struct {
		name, raw string
		want      time.Duration
		bad       bool
	}{
		{"plain", "42 (creditledger)" + rest, 3250 * time.Millisecond, false},
		{"spaces and parentheses in the name", "42 (a) (b c)" + rest, 3250 * time.Millisecond, false},
		{"no name", "42 creditledger" + rest, 0, true},
		{"cut short", "42 (x) S 1 2 3", 0, true},
		{"not a number", "42 (x) S 1 2 3 4 5 6 7 8 9 10 ab 75", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statCPU([]byte(tc.raw))
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Read for this process, /proc's figure agrees with getrusage's to within /proc's tick (and the
// CPU spent between the two reads), so a meter that counts other processes this way adds what
// they used; a process that does not exist is refused before a run starts.
func TestOtherCPUOfThisProcess(t *testing.T) {
	x := 0
	for i := 0; i < 50_000_000; i++ { // some CPU to measure
		x += i
	}
	_ = x
	self := processCPU()
	viaProc, err := otherCPU(os.Getpid())
	require.NoError(t, err)
	assert.InDelta(t, float64(self), float64(viaProc), float64(3*clockTick))
	assert.Error(t, cpuMeter{pids: []int{1 << 30}}.check())
}
