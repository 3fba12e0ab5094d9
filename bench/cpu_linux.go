//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// otherCPU is the CPU time (user and system) process pid has used so far, from /proc.
func otherCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	c, err := statCPU(raw)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return c, nil
}

// statCPU reads utime and stime from the text of a /proc/<pid>/stat file.
func statCPU(raw []byte) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses: the fields after it start
	// after its last ')'; utime and stime are fields 14 and 15, the 12th and 13th after it.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, errors.New("no command name")
	}
	f := bytes.Fields(raw[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
