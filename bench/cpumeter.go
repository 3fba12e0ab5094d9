package bench

import (
	"fmt"
	"time"
)

// cpuMeter reads the CPU time the measured processes have used so far: this one (with an
// embedded ledger, the ledger and its nats-server too) and the processes named by
// Options.CPUOf (the nodes of a ledger driven over --nats-url on this machine), so that a
// three-node run has a CPU bound as an embedded one has.
type cpuMeter struct{ pids []int }

// used is the measured processes' CPU time so far (user and system).
func (m cpuMeter) used() time.Duration {
	t := processCPU()
	for _, pid := range m.pids {
		c, _ := otherCPU(pid)
		t += c
	}
	return t
}

// check reads every named process once: a bench that would count a process it cannot read
// (gone, or not on this machine) refuses to start rather than print a CPU bound too high.
func (m cpuMeter) check() error {
	for _, pid := range m.pids {
		if _, err := otherCPU(pid); err != nil {
			return fmt.Errorf("--cpu-of %d: %w", pid, err)
		}
	}
	return nil
}
